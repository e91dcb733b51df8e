//! Settings of the HTTP platform shared by every service, built once in main.

use std::time::Duration;

/// Platform settings (built from the CLI's typed config).
#[derive(Clone, Debug)]
pub struct PlatformConfig {
    /// Where users reach the platform, e.g. `http://127.0.0.1:8080`; used
    /// for sign-in links and `jupyter_url`.
    pub public_url: String,
    /// Mark cookies `Secure` (set when served over HTTPS).
    pub secure_cookies: bool,
    /// Lifetime of access tokens.
    pub access_ttl: Duration,
    /// Lifetime of refresh tokens.
    pub refresh_ttl: Duration,
    /// Lifetime of one-time sign-in tokens.
    pub one_time_ttl: Duration,
    /// Largest accepted request body.
    pub body_limit: usize,
}

impl PlatformConfig {
    /// Defaults for a local instance at `public_url`.
    pub fn local(public_url: impl Into<String>) -> Self {
        PlatformConfig {
            public_url: public_url.into(),
            secure_cookies: false,
            access_ttl: Duration::from_secs(15 * 60),
            refresh_ttl: Duration::from_secs(14 * 24 * 3600),
            one_time_ttl: Duration::from_secs(24 * 3600),
            body_limit: 1024 * 1024,
        }
    }
}
