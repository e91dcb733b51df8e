//! Tests of the ECS runtime.
