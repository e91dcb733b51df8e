//! The journal against the vault: journaled snapshots must equal full walks.

mod fallback;
mod helpers;
mod random;
