//! The drift store (DriftStore port) on Amazon DynamoDB
