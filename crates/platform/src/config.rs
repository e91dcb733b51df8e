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
    /// What the host's sandbox does (reported to IT admins).
    pub sandbox: SandboxReport,
    /// Where agents' snapshot uploads are unpacked while they are captured
    /// (deleted after).
    pub upload_dir: std::path::PathBuf,
    /// Largest agent upload, unpacked bytes.
    pub agent_upload_max_bytes: u64,
    /// The lab's Amazon WorkSpaces Secure Browser portal, when users reach
    /// Jupyter through it.
    pub secure_browser_url: Option<String>,
}

/// Whether researcher code is confined on this host.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SandboxReport {
    /// `enforced`, `disabled` (`--insecure-no-sandbox`) or `unavailable`
    /// (Jupyter launches are refused).
    pub mode: String,
    /// Each environment runs under its own unprivileged uid (root hosts).
    pub per_environment_uid: bool,
    /// Why the sandbox is disabled or unavailable.
    pub detail: Option<String>,
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
            sandbox: SandboxReport {
                mode: "unavailable".into(),
                per_environment_uid: false,
                detail: Some("not reported by this process".into()),
            },
            upload_dir: std::env::temp_dir().join("westtek-uploads"),
            agent_upload_max_bytes: 64 << 30,
            secure_browser_url: None,
        }
    }
}
