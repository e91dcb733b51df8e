//! The platform's own endpoints: sign-in, labs and users, audit, health.

pub mod audit;
pub mod auth;
pub mod health;
pub mod labs;
pub mod system;
