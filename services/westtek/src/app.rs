//! Assembling and running the platform: the local adapters wired into one
//! `AppState`, the routers merged on one port, first-run bootstrap,
//! start-up reconcile and clean shutdown. `westtek up`, `westtek serve` and
//! the end-to-end tests all start the platform through `start`.

use anyhow::{anyhow, Context};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower_http::services::{ServeDir, ServeFile};
use utoipa::OpenApi;
use utoipa_swagger_ui::SwaggerUi;
use westtek_auth::cognito::{CognitoConfig, CognitoVerifier};
use westtek_auth::combined::FirstOf;
use westtek_auth::local::LocalTokenIssuer;
use westtek_domain::ports::{Clock, EventBus, MetadataStore, SystemClock, TokenVerifier};
use westtek_domain::{DriftStore, Role, TokenKind};
use westtek_drift_service::DriftHub;
use westtek_knowledge_service::KnowledgeService;
use westtek_platform::config::PlatformConfig;
use westtek_platform::jobs::JobHub;
use westtek_platform::ops::{self, Actor, NewUser};
use westtek_platform::AppState;
use westtek_runtime::{LocalJupyterRuntime, RuntimeConfig, UvBuilder};
use westtek_store::SqliteStore;

/// Which routers a process serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// Environments, Jupyter launch and gateway, plus the platform's
    /// sign-in, labs, audit and jobs endpoints.
    EnvManager,
    /// Snapshots: capture, compare, restore, drills.
    Snapshots,
    /// Drift: watcher, sweeps, events, live stream, alerts, Drift Analyzer.
    Drift,
    /// Knowledge and collaboration: knowledge-base sync, transfer packages,
    /// handovers, the Knowledge Transfer agent, shares, templates.
    Knowledge,
}

/// Where the platform's ports run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// One machine, embedded defaults: SQLite, the vault in the data dir
    /// with its key file, in-process events (or Redis), local Jupyter.
    #[default]
    Local,
    /// Every port on its AWS service; each AWS setting is required and
    /// checked at start-up (see [`UpConfig::validate`]).
    Aws,
}

/// Metadata on MongoDB / Amazon DocumentDB instead of `<data-dir>/meta.db`.
#[derive(Clone)]
pub struct MongoSettings {
    /// `mongodb://…` or `mongodb+srv://…` (may hold a password: never logged).
    pub url: secrecy::SecretString,
    pub database: String,
}

impl std::fmt::Debug for MongoSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MongoSettings")
            .field("url", &"<redacted>")
            .field("database", &self.database)
            .finish()
    }
}

impl Service {
    /// The name on the command line (`westtek serve NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Service::EnvManager => "env-manager",
            Service::Snapshots => "snapshots",
            Service::Drift => "drift",
            Service::Knowledge => "knowledge",
        }
    }
}

/// The AWS adapters' settings (each `None`: the local adapter). On the
/// `aws` profile the ones the running services need are required.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// DynamoDB table of drift states and events (`WESTTEK_DRIFT_TABLE`).
    pub drift_table: Option<String>,
    /// EventBridge bus name or ARN (`WESTTEK_EVENT_BUS`).
    pub event_bus: Option<String>,
    /// `group=queue-url,…` for the consumer groups this process runs
    /// (`WESTTEK_BUS_QUEUES`).
    pub bus_queues: Option<String>,
    /// Verified SES sender of CRITICAL drift e-mail (`WESTTEK_ALERT_SES_FROM`;
    /// recipients from `WESTTEK_ALERT_TO`).
    pub alert_ses_from: Option<String>,
    /// Recipients of the SES e-mail (`WESTTEK_ALERT_TO`).
    pub alert_to: Vec<String>,
    /// SNS topic ARN or E.164 numbers for CRITICAL drift SMS
    /// (`WESTTEK_ALERT_SMS`).
    pub alert_sms: Vec<String>,
    /// Knowledge documents, `s3://BUCKET/PREFIX` (`WESTTEK_KNOWLEDGE_URL`).
    pub knowledge_url: Option<String>,
    /// Bedrock Knowledge Base and its S3 data source, ingested after each
    /// sync (`WESTTEK_KNOWLEDGE_BASE_ID`, `WESTTEK_KNOWLEDGE_DATA_SOURCE_ID`).
    pub knowledge_base_id: Option<String>,
    pub knowledge_data_source_id: Option<String>,
    /// Bedrock agent id and alias id of the Drift Analyzer
    /// (`WESTTEK_DRIFT_AGENT_ID`, `WESTTEK_DRIFT_AGENT_ALIAS_ID`); without
    /// them the built-in analyzer answers.
    pub drift_agent: Option<(String, String)>,
    /// The same for the Knowledge Transfer agent (`WESTTEK_TRANSFER_AGENT_ID`,
    /// `WESTTEK_TRANSFER_AGENT_ALIAS_ID`).
    pub transfer_agent: Option<(String, String)>,
    /// The secret the `agent-actions` Lambda presents on
    /// `POST /internal/agent-actions` (`WESTTEK_AGENT_ACTIONS_TOKEN`); without
    /// it the route is not served.
    pub agent_actions_token: Option<secrecy::SecretString>,
}

/// Everything `start` needs.
#[derive(Clone, Debug)]
pub struct UpConfig {
    pub data_dir: PathBuf,
    pub bind: IpAddr,
    /// 0 picks a free port.
    pub port: u16,
    /// Defaults to `http://<bind>:<port>`.
    pub public_url: Option<String>,
    pub redis_url: Option<String>,
    /// Where `uv` may be installed besides PATH.
    pub tools_dir: Option<PathBuf>,
    /// The built portal (`web/dist`), when present.
    pub web_dir: Option<PathBuf>,
    pub idle_timeout: Option<Duration>,
    pub cognito: Option<CognitoConfig>,
    /// Name of the lab made on first run.
    pub first_lab: String,
    pub services: Vec<Service>,
    pub access_ttl: Duration,
    /// Drift detection and alerting.
    pub drift: westtek_drift_service::DriftConfig,
    /// Run researcher code unconfined, as the platform's own user
    /// (`--insecure-no-sandbox`); IT admins see a red banner.
    pub insecure_no_sandbox: bool,
    /// Where the snapshot vault lives: `None` is `<data-dir>/vault`;
    /// `s3://BUCKET/PREFIX` keeps it in S3 (standard AWS environment).
    pub vault_url: Option<String>,
    /// Wrap the vault's master key with this KMS key instead of the key
    /// file `<data-dir>/keys/vault.key`.
    pub vault_kms_key_id: Option<String>,
    /// Bounds of the snapshot/restore/drill queue.
    pub vault_queue: westtek_platform::queue::QueueLimits,
    /// Largest agent upload (unpacked bytes).
    pub agent_upload_max_bytes: u64,
    /// The WorkSpaces Secure Browser portal users open Jupyter in.
    pub secure_browser_url: Option<String>,
    pub profile: Profile,
    /// Metadata on MongoDB / DocumentDB (`WESTTEK_MONGO_URL`).
    pub mongo: Option<MongoSettings>,
    /// On the `aws` profile without `WESTTEK_MONGO_URL`: a SQLite file in
    /// the data dir, shared by every service on this one host, stands in for
    /// DocumentDB (tests, a single-host trial).
    pub metadata_in_sqlite: bool,
    /// The AWS adapters.
    pub aws: AwsSettings,
}

impl UpConfig {
    /// Defaults for a data dir (tests use port 0).
    pub fn new(data_dir: PathBuf) -> Self {
        UpConfig {
            data_dir,
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 8080,
            public_url: None,
            redis_url: None,
            tools_dir: None,
            web_dir: None,
            idle_timeout: Some(Duration::from_secs(3600)),
            cognito: None,
            first_lab: "my-lab".into(),
            services: vec![
                Service::EnvManager,
                Service::Snapshots,
                Service::Drift,
                Service::Knowledge,
            ],
            access_ttl: Duration::from_secs(15 * 60),
            drift: westtek_drift_service::DriftConfig::default(),
            insecure_no_sandbox: false,
            vault_url: None,
            vault_kms_key_id: None,
            vault_queue: Default::default(),
            agent_upload_max_bytes: 64 << 30,
            secure_browser_url: None,
            profile: Profile::Local,
            mongo: None,
            metadata_in_sqlite: false,
            aws: AwsSettings::default(),
        }
    }

    /// Checks that the settings fit together, naming every missing or
    /// wrong one (by its environment variable) in one message.
    ///
    /// # Errors
    /// The list of problems.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems: Vec<String> = Vec::new();
        if let Some(m) = &self.mongo {
            use secrecy::ExposeSecret;
            let url = m.url.expose_secret();
            if !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
                problems
                    .push("WESTTEK_MONGO_URL: must start with mongodb:// or mongodb+srv://".into());
            }
            if url.contains(".docdb.amazonaws.com") && !url.contains("retryWrites=false") {
                problems.push(
                    "WESTTEK_MONGO_URL: Amazon DocumentDB does not support retryable writes; \
                     add retryWrites=false (and tls=true) to the URL"
                        .into(),
                );
            }
            if m.database.is_empty() {
                problems.push("WESTTEK_MONGO_DATABASE: must not be empty".into());
            }
        }
        for (name, url) in [
            ("WESTTEK_VAULT_URL", &self.vault_url),
            ("WESTTEK_KNOWLEDGE_URL", &self.aws.knowledge_url),
        ] {
            if let Some(u) = url {
                if let Err(e) = westtek_vault_aws::parse_s3_url(u) {
                    problems.push(format!("{name}: {e}"));
                }
            }
        }
        if self.aws.knowledge_base_id.is_some() != self.aws.knowledge_data_source_id.is_some() {
            problems.push(
                "WESTTEK_KNOWLEDGE_BASE_ID and WESTTEK_KNOWLEDGE_DATA_SOURCE_ID go together".into(),
            );
        }
        if self.aws.knowledge_base_id.is_some() && self.aws.knowledge_url.is_none() {
            problems.push(
                "WESTTEK_KNOWLEDGE_BASE_ID needs WESTTEK_KNOWLEDGE_URL (the bucket it ingests)"
                    .into(),
            );
        }
        if (self.aws.drift_agent.is_some() || self.aws.transfer_agent.is_some())
            && self.aws.knowledge_url.is_none()
        {
            problems.push(
                "the Bedrock agents need WESTTEK_KNOWLEDGE_URL (their citations point into that bucket)".into(),
            );
        }
        if let Some(q) = &self.aws.bus_queues {
            if self.aws.event_bus.is_none() {
                problems.push("WESTTEK_BUS_QUEUES needs WESTTEK_EVENT_BUS".into());
            }
            if let Err(e) = westtek_bus_aws::parse_queue_map(q) {
                problems.push(format!("WESTTEK_BUS_QUEUES: {e}"));
            }
        }
        if self.aws.event_bus.is_some() && self.redis_url.is_some() {
            problems.push(
                "WESTTEK_EVENT_BUS and WESTTEK_REDIS_URL both name an event bus; keep one".into(),
            );
        }
        if self.aws.alert_ses_from.is_some() {
            if self.drift.smtp.is_some() {
                problems.push(
                    "WESTTEK_ALERT_SES_FROM and WESTTEK_SMTP both send alert e-mail; keep one"
                        .into(),
                );
            }
            if self.aws.alert_to.is_empty() {
                problems.push(
                    "WESTTEK_ALERT_SES_FROM is set but WESTTEK_ALERT_TO names no recipient".into(),
                );
            }
        }
        if let Some(u) = &self.secure_browser_url {
            if !u.starts_with("https://") || u.len() > 2048 || u.chars().any(char::is_control) {
                problems.push(
                    "WESTTEK_SECURE_BROWSER_URL: the secure-browser portal's https:// URL".into(),
                );
            }
        }
        for d in &self.aws.alert_sms {
            if let Err(e) = westtek_alerts_aws::SmsDestination::parse(d) {
                problems.push(format!("WESTTEK_ALERT_SMS: {e}"));
            }
        }
        if self.profile == Profile::Aws {
            let mut missing = |set: bool, name: &str, what: &str| {
                if !set {
                    problems.push(format!("{name} is not set ({what})"));
                }
            };
            missing(
                self.public_url.is_some(),
                "WESTTEK_PUBLIC_URL",
                "the URL users reach the platform at; every service signs and checks tokens for it",
            );
            missing(
                self.vault_url.is_some(),
                "WESTTEK_VAULT_URL",
                "the snapshot vault, s3://BUCKET/PREFIX",
            );
            missing(
                self.vault_kms_key_id.is_some(),
                "WESTTEK_VAULT_KMS_KEY_ID",
                "the KMS key wrapping the vault's master key",
            );
            missing(
                self.mongo.is_some() || self.metadata_in_sqlite,
                "WESTTEK_MONGO_URL",
                "metadata on DocumentDB; on a single host WESTTEK_METADATA_IN_SQLITE=true shares a SQLite file instead",
            );
            missing(
                self.cognito.is_some(),
                "WESTTEK_COGNITO_ISSUER",
                "the Cognito user pool researchers sign in with",
            );
            missing(
                self.cognito.as_ref().is_some_and(|c| c.client_id.is_some()),
                "WESTTEK_COGNITO_CLIENT_ID",
                "the app client Cognito tokens must be issued for",
            );
            missing(
                self.aws.drift_table.is_some(),
                "WESTTEK_DRIFT_TABLE",
                "the DynamoDB table of drift states and events",
            );
            missing(
                self.aws.event_bus.is_some(),
                "WESTTEK_EVENT_BUS",
                "the EventBridge bus the services publish to",
            );
            let consumes = self.services.contains(&Service::Drift)
                || self.services.contains(&Service::Knowledge);
            missing(
                !consumes || self.aws.bus_queues.is_some(),
                "WESTTEK_BUS_QUEUES",
                "group=SQS-queue-URL pairs of the drift and knowledge consumer groups",
            );
            if self.services.contains(&Service::Knowledge) {
                missing(
                    self.aws.knowledge_url.is_some(),
                    "WESTTEK_KNOWLEDGE_URL",
                    "the knowledge documents, s3://BUCKET/PREFIX",
                );
                missing(
                    self.aws.knowledge_base_id.is_some(),
                    "WESTTEK_KNOWLEDGE_BASE_ID",
                    "the Bedrock Knowledge Base ingesting those documents",
                );
                missing(
                    self.aws.knowledge_data_source_id.is_some(),
                    "WESTTEK_KNOWLEDGE_DATA_SOURCE_ID",
                    "the Knowledge Base's S3 data source",
                );
            }
        } else if self.metadata_in_sqlite {
            problems.push(
                "WESTTEK_METADATA_IN_SQLITE only applies to the aws profile (the local profile always uses SQLite unless WESTTEK_MONGO_URL is set)".into(),
            );
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(anyhow!(
                "the {} profile's settings are incomplete:\n  - {}",
                match self.profile {
                    Profile::Local => "local",
                    Profile::Aws => "aws",
                },
                problems.join("\n  - ")
            ))
        }
    }
}

/// The first-run sign-in.
#[derive(Clone, Debug)]
pub struct FirstLogin {
    pub username: String,
    pub token: String,
    pub url: String,
    /// Whether this start created the data (false: an unused link from an
    /// earlier start is shown again).
    pub created_now: bool,
}

/// A running platform.
pub struct RunningApp {
    pub addr: SocketAddr,
    pub url: String,
    pub state: AppState,
    pub first_login: Option<FirstLogin>,
    /// Drift detection, when the drift service runs here.
    pub drift: Option<Arc<DriftHub>>,
    /// The knowledge service, when it runs here.
    pub knowledge: Option<Arc<KnowledgeService>>,
    runtime: LocalJupyterRuntime,
    store: MetaStore,
    /// Held while running: one process per service and data dir.
    _locks: Vec<DataDirLock>,
    shutdown: Option<oneshot::Sender<()>>,
    server: JoinHandle<std::io::Result<()>>,
    background: Vec<JoinHandle<()>>,
}

impl RunningApp {
    /// Stops serving, stops every Jupyter server and closes the store.
    ///
    /// # Errors
    /// When the server task failed.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        // Live drift streams first: graceful shutdown waits for open responses.
        if let Some(d) = &self.drift {
            d.end_streams();
        }
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let served = tokio::time::timeout(Duration::from_secs(10), &mut self.server).await;
        for b in &self.background {
            b.abort();
        }
        if let Some(d) = &self.drift {
            d.close(Duration::from_secs(5)).await;
        }
        westtek_domain::ports::JupyterRuntime::stop_all(&self.runtime).await;
        self.store.close().await;
        match served {
            Ok(Ok(r)) => r.context("server failed"),
            Ok(Err(e)) => Err(anyhow!("server task: {e}")),
            Err(_) => {
                self.server.abort();
                Ok(())
            }
        }
    }

    /// Stops serving abruptly, the way a crash would: Jupyter servers keep
    /// running and nothing is cleaned up. For tests of start-up reconcile.
    pub async fn abort(self) {
        // A crashed process supervises nothing any more.
        self.runtime.abandon();
        self.server.abort();
        for b in &self.background {
            b.abort();
        }
        self.store.close().await;
    }

    /// Waits until the server ends by itself (it does not, unless it fails).
    ///
    /// # Errors
    /// When the server failed.
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.server)
            .await
            .map_err(|e| anyhow!("server task: {e}"))?
            .context("server failed")
    }
}

/// The whole API description.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut doc = westtek_platform::PlatformApi::openapi();
    doc.merge(westtek_env_manager::EnvManagerApi::openapi());
    doc.merge(westtek_snapshots::SnapshotsApi::openapi());
    doc.merge(westtek_drift_service::DriftApi::openapi());
    doc.merge(westtek_knowledge_service::KnowledgeApi::openapi());
    doc.info.title = "West Tek Environment Preservation Platform".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Reproducible Jupyter environments: environments, Jupyter, jobs, labs, audit. \
         Authenticate with `Authorization: Bearer <access token>` from `POST /api/auth/token`; \
         select a lab with `X-Westtek-Lab`; IT admins act in a lab with `X-Westtek-Acting-Lab`. \
         Errors are `application/problem+json` with a stable `code`."
            .into(),
    );
    doc.info.license = None;
    // The agent API's credential (`westtek agent`): a bearer token of its
    // own, scoped to one environment.
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "agent_credential",
        utoipa::openapi::security::SecurityScheme::Http(
            utoipa::openapi::security::HttpBuilder::new()
                .scheme(utoipa::openapi::security::HttpAuthScheme::Bearer)
                .bearer_format("wtagent_<environment id>_<secret>")
                .description(Some(
                    "An environment agent's credential (from adopting the environment or `POST /api/environments/{id}/agent-credential`); it opens only `/api/agent/v1/…`",
                ))
                .build(),
        ),
    );
    doc
}

fn portal(web_dir: Option<&Path>) -> Router {
    match web_dir.filter(|d| d.join("index.html").is_file()) {
        Some(d) => Router::new().fallback_service(ServeDir::new(d).fallback(ServeFile::new(d.join("index.html")))),
        None => Router::new().fallback(get(|| async {
            Html(
                "<!doctype html><html lang=en><meta charset=utf-8><title>West Tek</title>\
                 <h1>West Tek Environment Preservation Platform</h1>\
                 <p>The web portal is not built in this installation. The API is up: \
                 <a href=/api/docs/>API documentation</a>, <a href=/api/openapi.json>OpenAPI</a>.</p></html>",
            )
        })),
    }
}

/// The merged application router.
pub fn app_router(
    state: AppState,
    services: &[Service],
    drift: Option<Arc<DriftHub>>,
    knowledge: Option<Arc<KnowledgeService>>,
    web_dir: Option<&Path>,
) -> Router {
    let mut app: Router<AppState> = westtek_platform::router();
    for s in services {
        app = match s {
            Service::EnvManager => app.merge(westtek_env_manager::router()),
            Service::Snapshots => app.merge(westtek_snapshots::router()),
            Service::Drift => match &drift {
                Some(hub) => app.merge(westtek_drift_service::router(Arc::clone(hub))),
                None => app,
            },
            Service::Knowledge => match &knowledge {
                Some(k) => app.merge(westtek_knowledge_service::router(Arc::clone(k))),
                None => app,
            },
        };
    }
    let doc = openapi();
    let served_doc = doc.clone();
    app = app
        .route(
            "/api/openapi.json",
            get(move || async move { Json(served_doc.clone()) }),
        )
        .merge(SwaggerUi::new("/api/docs").url("/api/docs/openapi.json", doc));
    westtek_platform::serve_stack(app, state, Some(portal(web_dir)))
}

fn ensure_private_dir(p: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("cannot create {}", p.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot set permissions on {}", p.display()))
}

/// An exclusive lock on `<data-dir>/.lock-<service>`, so two processes never
/// run the same service over one data dir (the second would reconcile away
/// the first one's servers, builds and jobs). Different services may share
/// a data dir (each `westtek serve SERVICE` on one host), and so may drift
/// replicas; `westtek up` holds every lock. Released when dropped, or when
/// the process dies.
pub struct DataDirLock(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

impl DataDirLock {
    /// Takes the lock or fails naming the holder.
    ///
    /// # Errors
    /// When another process holds it or the file cannot be opened.
    pub fn acquire(data_dir: &Path, service: Service) -> anyhow::Result<Self> {
        use std::io::{Read, Seek, Write};
        let path = data_dir.join(format!(".lock-{}", service.name()));
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(mut locked) => {
                locked.set_len(0)?;
                locked.rewind()?;
                write!(locked, "{}", std::process::id())?;
                Ok(DataDirLock(locked))
            }
            Err((mut file, _)) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Err(anyhow!(
                    "another westtek (pid {}) is using the data dir {} for the {} service; stop it or use another --data-dir",
                    holder.trim(),
                    data_dir.display(),
                    service.name()
                ))
            }
        }
    }
}

/// Writes `contents` to `path` atomically with mode 0600.
///
/// # Errors
/// I/O failures.
pub fn write_private_file(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent", path.display()))?;
    let tmp = dir.join(format!(".{}.tmp", westtek_domain::EventId::new()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// The snapshot engine over the configured vault: `<data-dir>/vault` with
/// the key file, or S3 (`vault_url`) and/or KMS (`vault_kms_key_id`).
fn open_engine(
    cfg: &UpConfig,
    keys: &Path,
) -> anyhow::Result<westtek_snapshots::engine::LocalSnapshotEngine> {
    use westtek_snapshots::engine::LocalSnapshotEngine;
    let (envs, scratch) = (cfg.data_dir.join("envs"), cfg.data_dir.join("scratch"));
    if cfg.vault_url.is_none() && cfg.vault_kms_key_id.is_none() {
        return LocalSnapshotEngine::open_or_init(
            &cfg.data_dir.join("vault"),
            &keys.join("vault.key"),
            envs,
            scratch,
        )
        .map_err(|e| {
            anyhow!(
                "cannot open the snapshot vault in {}: {e}",
                cfg.data_dir.display()
            )
        });
    }
    let (storage, location): (Arc<dyn westtek_vault::Storage>, String) = match &cfg.vault_url {
        Some(url) => (
            Arc::new(
                westtek_vault_aws::S3Storage::from_url(
                    url,
                    westtek_vault_aws::S3Options::default(),
                )
                .map_err(|e| anyhow!("WESTTEK_VAULT_URL {url}: {e}"))?,
            ),
            url.clone(),
        ),
        None => {
            let dir = cfg.data_dir.join("vault");
            std::fs::create_dir_all(&dir)?;
            (
                Arc::new(westtek_vault::LocalStorage::new(&dir)),
                dir.display().to_string(),
            )
        }
    };
    let wrapper: Box<dyn westtek_vault::KeyWrapper> = match &cfg.vault_kms_key_id {
        Some(id) => Box::new(
            westtek_vault_aws::KmsWrapper::from_env(id)
                .map_err(|e| anyhow!("WESTTEK_VAULT_KMS_KEY_ID {id}: {e}"))?,
        ),
        None => Box::new(LocalSnapshotEngine::key_file_wrapper(
            &keys.join("vault.key"),
        )?),
    };
    LocalSnapshotEngine::open_or_init_in(storage, wrapper.as_ref(), envs, scratch)
        .map_err(|e| anyhow!("cannot open the snapshot vault at {location}: {e}"))
}

/// The metadata store the platform runs on: SQLite in the data dir, or
/// MongoDB / DocumentDB.
#[derive(Clone)]
enum MetaStore {
    Sqlite(SqliteStore),
    Mongo(westtek_store_mongo::MongoStore),
}

impl MetaStore {
    /// Opens the configured store.
    async fn open(cfg: &UpConfig) -> anyhow::Result<Self> {
        match &cfg.mongo {
            None => Ok(MetaStore::Sqlite(open_store(&cfg.data_dir).await?)),
            Some(m) => {
                use secrecy::ExposeSecret;
                let store = westtek_store_mongo::MongoStore::connect(
                    m.url.expose_secret(),
                    &m.database,
                    Arc::new(SystemClock),
                )
                .await
                .map_err(|e| {
                    anyhow!(
                        "cannot open the metadata store at WESTTEK_MONGO_URL (database {}): {e}",
                        m.database
                    )
                })?;
                Ok(MetaStore::Mongo(store))
            }
        }
    }

    fn metadata(&self) -> Arc<dyn MetadataStore> {
        match self {
            MetaStore::Sqlite(s) => Arc::new(s.clone()),
            MetaStore::Mongo(m) => Arc::new(m.clone()),
        }
    }

    fn drift(&self) -> Arc<dyn DriftStore> {
        match self {
            MetaStore::Sqlite(s) => Arc::new(s.clone()),
            MetaStore::Mongo(m) => Arc::new(m.clone()),
        }
    }

    async fn close(&self) {
        if let MetaStore::Sqlite(s) = self {
            s.close().await;
        }
    }
}

/// The event bus: EventBridge + SQS (`WESTTEK_EVENT_BUS`), Redis Streams
/// (`WESTTEK_REDIS_URL`) or in-process.
async fn open_bus(cfg: &UpConfig) -> anyhow::Result<Arc<dyn EventBus>> {
    if let Some(name) = &cfg.aws.event_bus {
        let mut bc = westtek_bus_aws::BusConfig::new(name);
        if let Some(q) = &cfg.aws.bus_queues {
            bc.queues = westtek_bus_aws::parse_queue_map(q)
                .map_err(|e| anyhow!("WESTTEK_BUS_QUEUES: {e}"))?;
        }
        let bus = westtek_bus_aws::EventBridgeBus::from_env(bc)
            .await
            .map_err(|e| anyhow!("WESTTEK_EVENT_BUS {name}: {e}"))?;
        return Ok(Arc::new(bus));
    }
    Ok(match &cfg.redis_url {
        None => Arc::new(westtek_bus::InProcessBus::new()),
        Some(u) => Arc::new(
            westtek_bus::RedisStreamsBus::connect(u, "westtek-events")
                .await
                .map_err(|e| anyhow!("cannot reach Redis at WESTTEK_REDIS_URL: {e}"))?,
        ),
    })
}

/// The drift store: DynamoDB (`WESTTEK_DRIFT_TABLE`, checked now so a
/// missing table is named at start-up) or the metadata store.
async fn open_drift_store(
    cfg: &UpConfig,
    store: &MetaStore,
) -> anyhow::Result<Arc<dyn DriftStore>> {
    match &cfg.aws.drift_table {
        None => Ok(store.drift()),
        Some(table) => {
            let s = westtek_drift_dynamodb::DynamoDriftStore::from_env(table.clone()).await;
            s.check()
                .await
                .map_err(|e| anyhow!("WESTTEK_DRIFT_TABLE {table}: {e}"))?;
            Ok(Arc::new(s))
        }
    }
}

/// Alert channels for every lab besides its webhooks: SES e-mail and SNS
/// SMS when configured.
async fn alert_channels(
    cfg: &UpConfig,
) -> anyhow::Result<Vec<Arc<dyn westtek_alerts::RoutedChannel>>> {
    let mut channels: Vec<Arc<dyn westtek_alerts::RoutedChannel>> = Vec::new();
    if let Some(from) = &cfg.aws.alert_ses_from {
        let ses = westtek_alerts_aws::SesNotifier::from_env(westtek_alerts_aws::SesConfig::new(
            from.clone(),
            cfg.aws.alert_to.clone(),
        ))
        .await
        .map_err(|e| anyhow!("WESTTEK_ALERT_SES_FROM {from}: {e}"))?;
        channels.push(Arc::new(ses));
    }
    if !cfg.aws.alert_sms.is_empty() {
        let sdk = westtek_aws::shared_config(1).await;
        for n in westtek_alerts_aws::SnsNotifier::for_destinations(&sdk, &cfg.aws.alert_sms)
            .map_err(|e| anyhow!("WESTTEK_ALERT_SMS: {e}"))?
        {
            channels.push(Arc::new(n));
        }
    }
    Ok(channels)
}

/// A Bedrock agent of `kind` when its ids are set.
async fn bedrock_agent(
    cfg: &UpConfig,
    kind: westtek_assist::AgentKind,
    ids: &Option<(String, String)>,
) -> anyhow::Result<Option<Arc<dyn westtek_assist::Agent>>> {
    let (Some((agent_id, alias_id)), Some(url)) = (ids, &cfg.aws.knowledge_url) else {
        return Ok(None);
    };
    let (bucket, prefix) =
        westtek_vault_aws::parse_s3_url(url).map_err(|e| anyhow!("WESTTEK_KNOWLEDGE_URL: {e}"))?;
    let layout = westtek_knowledge_aws::S3Layout::new(&bucket, &prefix)
        .map_err(|e| anyhow!("WESTTEK_KNOWLEDGE_URL {url}: {e}"))?;
    let ids = westtek_knowledge_aws::BedrockAgentIds {
        agent_id: agent_id.clone(),
        alias_id: alias_id.clone(),
        knowledge_base_id: match kind {
            westtek_assist::AgentKind::KnowledgeTransfer => cfg.aws.knowledge_base_id.clone(),
            _ => None,
        },
    };
    Ok(Some(Arc::new(
        westtek_knowledge_aws::BedrockAgent::from_env(kind, ids, layout).await,
    )))
}

/// Which lab an environment belongs to, for the knowledge bucket's
/// metadata files.
struct StoreEnvironmentLabs(Arc<dyn MetadataStore>);

#[async_trait::async_trait]
impl westtek_knowledge_aws::EnvironmentLabs for StoreEnvironmentLabs {
    async fn lab_of(
        &self,
        environment: westtek_domain::EnvironmentId,
    ) -> Result<Option<westtek_domain::LabId>, String> {
        match self.0.get_environment(environment).await {
            Ok(e) => Ok(Some(e.lab_id)),
            Err(westtek_domain::DomainError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// After each knowledge sync, the Bedrock Knowledge Base ingests the
/// bucket (in the background: one job at a time, polled to its end).
struct IngestAfterSync {
    kb: Arc<westtek_knowledge_aws::BedrockKbSync>,
    running: tokio::sync::Mutex<()>,
    again: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl westtek_knowledge_service::AfterSync for IngestAfterSync {
    async fn synced(
        &self,
        env: westtek_domain::EnvironmentId,
        _report: &westtek_knowledge_service::sync::SyncReport,
    ) {
        use std::sync::atomic::Ordering;
        self.again.store(true, Ordering::Release);
        // One ingestion at a time; syncs while one runs fold into one more.
        let Ok(_one) = self.running.try_lock() else {
            return;
        };
        while self.again.swap(false, Ordering::AcqRel) {
            use westtek_knowledge_aws::KnowledgeBaseSync;
            match self.kb.ingest().await {
                Ok(p) => tracing::info!(env = %env, job = ?p, "knowledge base ingested the bucket"),
                Err(e) => tracing::warn!(env = %env, error = %e, "knowledge base ingestion failed"),
            }
        }
    }
}

/// The knowledge service over the configured document store.
async fn open_knowledge(
    cfg: &UpConfig,
    state: &AppState,
    drift: Arc<dyn DriftStore>,
) -> anyhow::Result<Arc<KnowledgeService>> {
    let dir = cfg.data_dir.join("knowledge");
    let Some(url) = &cfg.aws.knowledge_url else {
        return KnowledgeService::open_local(state.clone(), drift, &dir)
            .map_err(|e| anyhow!("cannot open the knowledge base: {e}"));
    };
    let (bucket, prefix) =
        westtek_vault_aws::parse_s3_url(url).map_err(|e| anyhow!("WESTTEK_KNOWLEDGE_URL: {e}"))?;
    let docs = westtek_knowledge_aws::S3DocumentStore::from_env(&bucket, &prefix)
        .await
        .map_err(|e| anyhow!("WESTTEK_KNOWLEDGE_URL {url}: {e}"))?
        .with_environment_labs(Arc::new(StoreEnvironmentLabs(state.store.clone())));
    let after: Option<Arc<dyn westtek_knowledge_service::AfterSync>> = match (
        &cfg.aws.knowledge_base_id,
        &cfg.aws.knowledge_data_source_id,
    ) {
        (Some(kb), Some(ds)) => {
            let sync = westtek_knowledge_aws::BedrockKbSync::from_env(
                kb,
                ds,
                westtek_knowledge_aws::IngestionOptions::default(),
            )
            .await;
            Some(Arc::new(IngestAfterSync {
                kb: Arc::new(sync),
                running: tokio::sync::Mutex::new(()),
                again: std::sync::atomic::AtomicBool::new(false),
            }))
        }
        _ => None,
    };
    KnowledgeService::open_with(
        state.clone(),
        drift,
        Arc::new(docs),
        &dir.join("index"),
        after,
    )
    .map_err(|e| anyhow!("cannot open the knowledge index: {e}"))
}

/// Opens the metadata store of a data dir.
///
/// # Errors
/// When the file cannot be opened or migrated.
pub async fn open_store(data_dir: &Path) -> anyhow::Result<SqliteStore> {
    ensure_private_dir(data_dir)?;
    SqliteStore::open(&data_dir.join("meta.db"), Arc::new(SystemClock))
        .await
        .map_err(|e| {
            anyhow!(
                "cannot open the metadata store in {}: {e}",
                data_dir.display()
            )
        })
}

/// Creates the first lab and IT admin on an empty store, or finds the unused
/// first-run link of an earlier start.
async fn bootstrap(
    store: &dyn MetadataStore,
    clock: &dyn Clock,
    cfg: &UpConfig,
    url: &str,
    one_time_ttl: Duration,
) -> anyhow::Result<Option<FirstLogin>> {
    let path = cfg.data_dir.join("first-login");
    let login_url = |t: &str| format!("{url}/api/auth/login?token={t}");
    if store.count_users().await? > 0 {
        // Show the first-run link again only while it still works.
        if let Ok(saved) = std::fs::read_to_string(&path) {
            let token = saved.trim().to_string();
            let hash = westtek_auth::secret::secret_hash(&token);
            match store.get_token(&hash, TokenKind::OneTimeLogin).await? {
                Some(t) if t.expires_at > clock.now() => {
                    return Ok(Some(FirstLogin {
                        username: "admin".into(),
                        url: login_url(&token),
                        token,
                        created_now: false,
                    }))
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        return Ok(None);
    }
    let actor = Actor {
        id: None,
        name: "westtek (first run)".into(),
        request_id: "first-run".into(),
        acting_it_admin: false,
    };
    // The link is on disk before the admin exists: a crash in between leaves
    // no users, and the next start writes a new one.
    let token = westtek_auth::secret::random_secret();
    write_private_file(&path, &token)?;
    // A crash after the lab was made but before the admin: reuse the lab.
    let lab = match store.find_lab_by_name(&cfg.first_lab).await? {
        Some(l) => l,
        None => ops::create_lab(store, clock, &actor, &cfg.first_lab, None, None).await?,
    };
    ops::create_user(
        store,
        clock,
        &actor,
        NewUser {
            username: "admin",
            display_name: Some("Administrator"),
            membership: Some((lab.id, Role::LabAdmin)),
            it_admin: true,
            password: None,
            one_time_ttl,
            one_time_secret: Some(token.clone()),
        },
    )
    .await?;
    Ok(Some(FirstLogin {
        username: "admin".into(),
        url: login_url(&token),
        token,
        created_now: true,
    }))
}

/// Starts the platform: binds, wires adapters, reconciles, bootstraps.
///
/// # Errors
/// A message naming what is missing or broken (data dir, port, uv, Redis).
pub async fn start(cfg: UpConfig) -> anyhow::Result<RunningApp> {
    cfg.validate()?;
    ensure_private_dir(&cfg.data_dir)?;
    // Drift replicas may share a data dir (recording is a compare-and-set:
    // two replicas seeing one change store one event); the other services
    // own start-up repairs or local files and run once per data dir.
    let locks = cfg
        .services
        .iter()
        .filter(|s| **s != Service::Drift)
        .map(|s| DataDirLock::acquire(&cfg.data_dir, *s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let runs = |s: Service| cfg.services.contains(&s);
    let listener = tokio::net::TcpListener::bind(SocketAddr::new(cfg.bind, cfg.port))
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}:{} (is another westtek running? use --port)",
                cfg.bind, cfg.port
            )
        })?;
    let addr = listener.local_addr()?;
    let url = cfg
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_string();

    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = MetaStore::open(&cfg).await?;
    let store_port = store.metadata();
    let keys = cfg.data_dir.join("keys");
    ensure_private_dir(&keys)?;
    let issuer =
        LocalTokenIssuer::load_or_create(&keys.join("signing-key.pem"), &url, cfg.access_ttl)
            .map_err(|e| anyhow!("cannot load the signing key: {e}"))?;
    let verifier: Arc<dyn TokenVerifier> = match &cfg.cognito {
        None => Arc::new(issuer.clone()),
        Some(c) => Arc::new(FirstOf(vec![
            Arc::new(issuer.clone()),
            Arc::new(CognitoVerifier::new(c.clone(), reqwest::Client::new())),
        ])),
    };
    let bus = open_bus(&cfg).await?;
    let uv = westtek_runtime::find_uv(cfg.tools_dir.as_deref()).ok_or_else(|| {
        anyhow!("uv was not found on PATH or in the tools dir; run the README's run command (it installs uv) or `pip install uv`")
    })?;
    let mut rcfg = RuntimeConfig::new(cfg.data_dir.join("envs"), cfg.data_dir.join("logs"), uv);
    rcfg.idle_timeout = cfg.idle_timeout;
    if cfg.insecure_no_sandbox {
        rcfg.sandbox = westtek_runtime::Sandbox::detect(true);
    }
    let sandbox_status = rcfg.sandbox.status();
    let runtime = LocalJupyterRuntime::new(rcfg.clone());
    let drill_sandbox = rcfg.sandbox.clone();
    let builder = UvBuilder::new(rcfg);
    // The AWS clients block on their own runtimes: open off this one.
    let engine = {
        let (cfg, keys) = (cfg.clone(), keys.clone());
        tokio::task::spawn_blocking(move || open_engine(&cfg, &keys))
            .await
            .map_err(|e| anyhow!("opening the vault: {e}"))??
    }
    .with_sandbox(drill_sandbox);
    // The change journal: incremental captures read only what changed.
    let engine = match westtek_journal::Journal::new(westtek_journal::JournalConfig::default()) {
        Ok(j) => engine.with_journal(Arc::new(j)),
        Err(e) => {
            tracing::warn!(error = %e, "no change journal: every snapshot walks the whole environment");
            engine
        }
    };
    let mut pcfg = PlatformConfig::local(url.clone());
    pcfg.access_ttl = cfg.access_ttl;
    pcfg.secure_cookies = url.starts_with("https://");
    pcfg.upload_dir = cfg.data_dir.join("scratch").join("uploads");
    pcfg.agent_upload_max_bytes = cfg.agent_upload_max_bytes;
    pcfg.secure_browser_url = cfg.secure_browser_url.clone();
    pcfg.sandbox = westtek_platform::config::SandboxReport {
        mode: sandbox_status.mode.into(),
        per_environment_uid: sandbox_status.per_environment_uid,
        detail: sandbox_status.detail.clone(),
    };
    let one_time_ttl = pcfg.one_time_ttl;
    let state = AppState {
        store: store_port.clone(),
        bus,
        verifier,
        issuer: Some(issuer),
        clock: clock.clone(),
        builder: Arc::new(builder),
        runtime: Arc::new(runtime.clone()),
        snapshots: Arc::new(engine),
        jobs: JobHub::new(store_port.clone(), clock.clone()),
        vault_queue: westtek_platform::queue::FairQueue::new(cfg.vault_queue),
        config: Arc::new(pcfg),
        responses: Default::default(),
        tokens: Default::default(),
        access: Default::default(),
        sign_in_failures: Default::default(),
    };

    // Start-up reconcile: each service repairs only what it owns (another
    // service's process may be running its own work right now).
    if runs(Service::EnvManager) {
        let orphans = runtime.reconcile_orphans().await;
        if !orphans.is_empty() {
            tracing::warn!(
                count = orphans.len(),
                "stopped Jupyter servers left behind by an earlier run"
            );
        }
        westtek_env_manager::reconcile(&state)
            .await
            .map_err(|e| anyhow!("start-up reconcile failed: {e}"))?;
    }
    if runs(Service::Snapshots) {
        westtek_snapshots::reconcile(&state)
            .await
            .map_err(|e| anyhow!("start-up reconcile of snapshots failed: {e}"))?;
    }
    // The first lab and IT admin: made by the process that serves sign-in.
    let first_login = if runs(Service::EnvManager) {
        bootstrap(&*store_port, &*clock, &cfg, &url, one_time_ttl).await?
    } else {
        None
    };

    let drift_store = open_drift_store(&cfg, &store).await?;
    let (drift, drift_tasks) = if cfg.services.contains(&Service::Drift) {
        let drift_store = Arc::clone(&drift_store);
        let store_targets: Arc<dyn westtek_alerts::TargetSource> =
            Arc::new(westtek_drift_service::alerting::StoreTargets {
                store: Arc::clone(&drift_store),
                smtp: cfg.drift.smtp.clone(),
            });
        let channels = alert_channels(&cfg).await?;
        let targets: Arc<dyn westtek_alerts::TargetSource> = if channels.is_empty() {
            store_targets
        } else {
            Arc::new(westtek_alerts::WithChannels::new(store_targets, channels))
        };
        let letters = Arc::new(westtek_drift_service::alerting::StoreDeadLetters {
            store: Arc::clone(&drift_store),
            audit: state.store.clone(),
        });
        let (hub, batches) = DriftHub::start(
            state.clone(),
            drift_store,
            cfg.drift.clone(),
            targets,
            letters,
        )
        .map_err(|e| anyhow!("cannot start drift detection: {e}"))?;
        if let Some(a) = bedrock_agent(
            &cfg,
            westtek_assist::AgentKind::DriftAnalyzer,
            &cfg.aws.drift_agent,
        )
        .await?
        {
            hub.use_agent(a);
        }
        let tasks = hub.spawn_background(batches);
        (Some(hub), tasks)
    } else {
        (None, Vec::new())
    };
    let knowledge = if cfg.services.contains(&Service::Knowledge) {
        let k = open_knowledge(&cfg, &state, Arc::clone(&drift_store)).await?;
        if let Some(a) = bedrock_agent(
            &cfg,
            westtek_assist::AgentKind::KnowledgeTransfer,
            &cfg.aws.transfer_agent,
        )
        .await?
        {
            k.use_agent(a);
        }
        Some(k)
    } else {
        None
    };
    let app = app_router(
        state.clone(),
        &cfg.services,
        drift.clone(),
        knowledge.clone(),
        cfg.web_dir.as_deref(),
    );
    // The Bedrock agents' action groups (through the agent-actions Lambda)
    // run the same tools as the HTTP API, behind their own secret.
    let app = match &cfg.aws.agent_actions_token {
        Some(token) if drift.is_some() || knowledge.is_some() => {
            let tools = westtek_agent_actions::Tools {
                drift: drift.as_ref().map(|hub| {
                    Arc::new(westtek_agent_actions::RecordingGate::new(
                        Arc::new(westtek_drift_service::tools::ServiceTools::new(
                            Arc::clone(hub),
                            true,
                        )),
                        Arc::new(westtek_agent_actions::StoreMemberships(state.store.clone())),
                    )) as Arc<dyn westtek_assist::DriftTools>
                }),
                knowledge: knowledge.as_ref().map(|k| {
                    Arc::new(westtek_agent_actions::DocumentKnowledgeTools::new(
                        Arc::clone(&k.docs),
                    )) as Arc<dyn westtek_agent_actions::KnowledgeTools>
                }),
            };
            app.route_service(
                westtek_agent_actions::PATH,
                westtek_agent_actions::router(tools, token),
            )
        }
        _ => app,
    };
    let (tx, rx) = oneshot::channel::<()>();
    // No Nagle delay on small API answers.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp: &mut tokio::net::TcpStream| {
        let _ = tcp.set_nodelay(true);
    });
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
    });
    let mut background = Vec::new();
    if runs(Service::EnvManager) {
        background.extend(westtek_env_manager::spawn_background(state.clone()));
    }
    if runs(Service::Snapshots) {
        background.extend(westtek_snapshots::spawn_background(state.clone()));
    }
    background.extend(drift_tasks);
    if let Some(k) = &knowledge {
        background.push(k.spawn_background());
    }
    Ok(RunningApp {
        addr,
        url,
        state,
        first_login,
        drift,
        knowledge,
        runtime,
        store,
        _locks: locks,
        shutdown: Some(tx),
        server,
        background,
    })
}
