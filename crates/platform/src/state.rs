//! The application state every router shares: cheap clones of the ports.
//! Built only in `westtek` main and in test helpers.

use crate::config::PlatformConfig;
use crate::jobs::JobHub;
use std::sync::Arc;
use westtek_auth::local::LocalTokenIssuer;
use westtek_domain::ports::{
    Clock, EnvironmentBuilder, EventBus, JupyterRuntime, MetadataStore, SnapshotEngine,
    TokenVerifier,
};

/// Everything a handler may use.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn MetadataStore>,
    pub bus: Arc<dyn EventBus>,
    pub verifier: Arc<dyn TokenVerifier>,
    /// The platform's own token issuer (local profile); `None` when an
    /// external identity provider (Cognito) issues tokens.
    pub issuer: Option<LocalTokenIssuer>,
    pub clock: Arc<dyn Clock>,
    pub builder: Arc<dyn EnvironmentBuilder>,
    pub runtime: Arc<dyn JupyterRuntime>,
    /// Captures and restores environments (the vault).
    pub snapshots: Arc<dyn SnapshotEngine>,
    pub jobs: JobHub,
    /// Where snapshot, restore and drill jobs wait for a slot (fair across labs).
    pub vault_queue: crate::queue::FairQueue,
    pub config: Arc<PlatformConfig>,
    /// Serialized hot listings (see `cache`).
    pub responses: crate::cache::ResponseCache,
    /// Bearer tokens that verified, until they expire.
    pub tokens: crate::token_cache::TokenCache,
    /// What token subjects may do now (the store's users and memberships,
    /// briefly cached).
    pub access: crate::live::LiveAccess,
    /// Failed password sign-ins per username.
    pub sign_in_failures: crate::session::SignInLimiter,
}
