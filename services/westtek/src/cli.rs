//! The command line: `up`, `serve`, `admin`, `audit`, `login`, `env`,
//! `openapi`. Typed once with clap; every setting also reads its
//! `WESTTEK_*` variable. Errors go to stderr with a non-zero exit.

use crate::app::{self, MongoSettings, Profile, Service, UpConfig};
use crate::{admin, client};
use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// West Tek Environment Preservation Platform.
#[derive(Debug, Parser)]
#[command(name = "westtek", version, about, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Where the platform keeps its data.
#[derive(Debug, Clone, Args)]
pub struct DataDirArg {
    /// Data directory (metadata, keys, environments, logs).
    #[arg(long, env = "WESTTEK_DATA_DIR", default_value = "./westtek-data")]
    pub data_dir: PathBuf,
}

/// Settings of a serving process.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataDirArg,
    /// `local`: embedded defaults on one machine. `aws`: every port on its
    /// AWS service; the AWS settings are required and checked at start-up.
    #[arg(long, env = "WESTTEK_PROFILE", value_enum, default_value_t = Profile::Local)]
    pub profile: Profile,
    /// Metadata (users, labs, environments, snapshots, audit) on MongoDB or
    /// Amazon DocumentDB (`…?tls=true&retryWrites=false`) instead of
    /// `<data-dir>/meta.db`.
    #[arg(long, env = "WESTTEK_MONGO_URL", hide_env_values = true)]
    pub mongo_url: Option<String>,
    /// The database on that server.
    #[arg(long, env = "WESTTEK_MONGO_DATABASE", default_value = "westtek")]
    pub mongo_database: String,
    /// `aws` profile on one host only: a SQLite file in the data dir, shared
    /// by every service process, stands in for DocumentDB.
    #[arg(long, env = "WESTTEK_METADATA_IN_SQLITE")]
    pub metadata_in_sqlite: bool,
    /// Port to listen on (0: any free port).
    #[arg(long, env = "WESTTEK_PORT", default_value_t = 8080)]
    pub port: u16,
    /// Address to listen on.
    #[arg(long, env = "WESTTEK_BIND", default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// URL users reach the platform at (default: http://BIND:PORT).
    #[arg(long, env = "WESTTEK_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Redis for the event bus (Redis Streams); default: in-process.
    #[arg(long, env = "WESTTEK_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Folder with tools the run script installed (uv); searched after PATH.
    #[arg(long, env = "WESTTEK_TOOLS_DIR")]
    pub tools_dir: Option<PathBuf>,
    /// The built portal to serve at / (default: ./web/dist when present).
    #[arg(long, env = "WESTTEK_WEB_DIR")]
    pub web_dir: Option<PathBuf>,
    /// Stop Jupyter servers idle this many seconds (0: never).
    #[arg(long, env = "WESTTEK_JUPYTER_IDLE_TIMEOUT", default_value_t = 3600)]
    pub jupyter_idle_timeout: u64,
    /// Run notebooks, terminals and installs WITHOUT the sandbox, as the
    /// platform's own user: they can read its keys and every lab's files.
    /// Only for a single-user machine; IT admins see a red banner.
    #[arg(long, env = "WESTTEK_INSECURE_NO_SANDBOX")]
    pub insecure_no_sandbox: bool,
    /// Name of the lab created on first run.
    #[arg(long, env = "WESTTEK_FIRST_LAB", default_value = "my-lab")]
    pub first_lab: String,
    /// Keep the snapshot vault in S3 (`s3://BUCKET/PREFIX`; credentials,
    /// region and endpoint from the standard AWS environment) instead of
    /// `<data-dir>/vault`.
    #[arg(long, env = "WESTTEK_VAULT_URL")]
    pub vault_url: Option<String>,
    /// Wrap the vault's master key with this AWS KMS key (id, ARN or
    /// alias/NAME) instead of `<data-dir>/keys/vault.key`.
    #[arg(long, env = "WESTTEK_VAULT_KMS_KEY_ID")]
    pub vault_kms_key_id: Option<String>,
    /// DynamoDB table of drift states and events (aws profile).
    #[arg(long, env = "WESTTEK_DRIFT_TABLE")]
    pub drift_table: Option<String>,
    /// EventBridge bus (name or ARN) the services publish to, instead of
    /// Redis or in-process.
    #[arg(long, env = "WESTTEK_EVENT_BUS")]
    pub event_bus: Option<String>,
    /// `group=SQS-queue-URL` pairs (comma-separated) of the consumer groups
    /// this process runs (`drift`, `knowledge`).
    #[arg(long, env = "WESTTEK_BUS_QUEUES")]
    pub bus_queues: Option<String>,
    /// Send CRITICAL drift e-mail by Amazon SES from this verified address
    /// (to `WESTTEK_ALERT_TO`), instead of SMTP.
    #[arg(long, env = "WESTTEK_ALERT_SES_FROM")]
    pub alert_ses_from: Option<String>,
    /// Text CRITICAL drift by Amazon SNS: a topic ARN or E.164 numbers
    /// (comma-separated).
    #[arg(long, env = "WESTTEK_ALERT_SMS", value_delimiter = ',')]
    pub alert_sms: Vec<String>,
    /// Keep knowledge documents in S3 (`s3://BUCKET/PREFIX`, the seed's
    /// layout) instead of `<data-dir>/knowledge/docs`.
    #[arg(long, env = "WESTTEK_KNOWLEDGE_URL")]
    pub knowledge_url: Option<String>,
    /// Bedrock Knowledge Base that ingests those documents after each sync.
    #[arg(long, env = "WESTTEK_KNOWLEDGE_BASE_ID")]
    pub knowledge_base_id: Option<String>,
    /// Its S3 data source.
    #[arg(long, env = "WESTTEK_KNOWLEDGE_DATA_SOURCE_ID")]
    pub knowledge_data_source_id: Option<String>,
    /// Bedrock agent id of the Drift Analyzer (with its alias id); without
    /// it the built-in analyzer answers.
    #[arg(
        long,
        env = "WESTTEK_DRIFT_AGENT_ID",
        requires = "drift_agent_alias_id"
    )]
    pub drift_agent_id: Option<String>,
    #[arg(
        long,
        env = "WESTTEK_DRIFT_AGENT_ALIAS_ID",
        requires = "drift_agent_id"
    )]
    pub drift_agent_alias_id: Option<String>,
    /// Bedrock agent id of the Knowledge Transfer agent (with its alias id);
    /// without it the built-in agent answers.
    #[arg(
        long,
        env = "WESTTEK_TRANSFER_AGENT_ID",
        requires = "transfer_agent_alias_id"
    )]
    pub transfer_agent_id: Option<String>,
    #[arg(
        long,
        env = "WESTTEK_TRANSFER_AGENT_ALIAS_ID",
        requires = "transfer_agent_id"
    )]
    pub transfer_agent_alias_id: Option<String>,
    /// Serve `POST /internal/agent-actions` (the Bedrock agents' action
    /// groups, called by the agent-actions Lambda) for requests carrying
    /// this secret (drift and knowledge services).
    #[arg(long, env = "WESTTEK_AGENT_ACTIONS_TOKEN", hide_env_values = true)]
    pub agent_actions_token: Option<String>,
    /// Cognito user pool issuer (https://cognito-idp.REGION.amazonaws.com/POOL);
    /// enables Cognito tokens besides the platform's own.
    #[arg(long, env = "WESTTEK_COGNITO_ISSUER")]
    pub cognito_issuer: Option<String>,
    /// JWKS URL, when not `<issuer>/.well-known/jwks.json`.
    #[arg(long, env = "WESTTEK_COGNITO_JWKS_URL")]
    pub cognito_jwks_url: Option<String>,
    /// App client id tokens must be issued for.
    #[arg(long, env = "WESTTEK_COGNITO_CLIENT_ID")]
    pub cognito_client_id: Option<String>,
    /// SMTP server for CRITICAL drift e-mail (`host:port`); none: no e-mail.
    #[arg(long, env = "WESTTEK_SMTP")]
    pub smtp: Option<String>,
    /// `none`, `starttls` or `tls`.
    #[arg(long, env = "WESTTEK_SMTP_TLS", default_value = "starttls")]
    pub smtp_tls: String,
    #[arg(long, env = "WESTTEK_SMTP_USER")]
    pub smtp_user: Option<String>,
    #[arg(long, env = "WESTTEK_SMTP_PASSWORD", hide_env_values = true)]
    pub smtp_password: Option<String>,
    /// Sender of alert e-mail.
    #[arg(long, env = "WESTTEK_ALERT_FROM", default_value = "westtek@localhost")]
    pub alert_from: String,
    /// Recipients of CRITICAL drift e-mail (comma-separated).
    #[arg(long, env = "WESTTEK_ALERT_TO", value_delimiter = ',')]
    pub alert_to: Vec<String>,
    /// Seconds between full drift sweeps of every environment.
    #[arg(long, env = "WESTTEK_DRIFT_SWEEP_SECS", default_value_t = 300)]
    pub drift_sweep_secs: u64,
    /// Snapshot, restore and drill jobs running at once; more wait in a
    /// queue served fairly across labs.
    #[arg(long, env = "WESTTEK_VAULT_JOBS", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub vault_jobs: u16,
    /// Snapshot, restore and drill jobs one lab may have waiting; more are
    /// refused with `429 queue_full`.
    #[arg(long, env = "WESTTEK_VAULT_QUEUE_PER_LAB", default_value_t = 200)]
    pub vault_queue_per_lab: u32,
    /// Largest snapshot an adopted environment's agent may upload, in
    /// unpacked bytes.
    #[arg(long, env = "WESTTEK_AGENT_UPLOAD_MAX_BYTES", default_value_t = 64 << 30)]
    pub agent_upload_max_bytes: u64,
    /// The Amazon WorkSpaces Secure Browser portal (https URL) users open
    /// Jupyter in; the portal then sends them there first.
    #[arg(long, env = "WESTTEK_SECURE_BROWSER_URL")]
    pub secure_browser_url: Option<String>,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole platform on one port (portal at /, API at /api,
    /// Jupyter at /jupyter). Creates the data dir, first lab and admin on
    /// first run and prints a one-time sign-in link.
    Up(ServeArgs),
    /// Run one service.
    Serve {
        /// The service.
        service: Service,
        #[command(flatten)]
        args: ServeArgs,
    },
    /// Administer a data dir directly (labs, users).
    Admin {
        #[command(subcommand)]
        command: admin::AdminCommand,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// The audit trail of a data dir.
    Audit {
        #[command(subcommand)]
        command: admin::AuditCommand,
        #[command(flatten)]
        data: DataDirArg,
    },
    /// Sign in to a running platform and remember the session.
    Login(client::LoginArgs),
    /// Environments on a running platform.
    Env {
        #[command(subcommand)]
        command: client::EnvCommand,
    },
    /// Snapshots on a running platform.
    Snapshot {
        #[command(subcommand)]
        command: client::SnapshotCommand,
    },
    /// Drift on a running platform: status, events, live watch, accept,
    /// rollback, and questions to the Drift Analyzer.
    Drift {
        #[command(subcommand)]
        command: client::DriftCommand,
    },
    /// Knowledge transfer on a running platform: export an environment's
    /// transfer package, ask the Knowledge Transfer agent.
    Transfer {
        #[command(subcommand)]
        command: client::TransferCommand,
    },
    /// The standalone vault (no server): init, snapshot, ls, show, restore,
    /// diff, verify, gc, delete.
    Vault(crate::vault_cli::VaultArgs),
    /// The environment agent on a lab machine: adopt an existing venv,
    /// watch it for drift, upload snapshots.
    Agent {
        #[command(subcommand)]
        command: crate::agent::AgentCommand,
    },
    /// Print the OpenAPI document.
    Openapi,
}

/// The configuration of a serving process from its parsed arguments,
/// validated.
///
/// # Errors
/// A message naming every missing or wrong setting.
pub fn up_config(args: ServeArgs, services: Vec<Service>) -> anyhow::Result<UpConfig> {
    let mut cfg = UpConfig::new(args.data.data_dir);
    cfg.drift.sweep_interval = Duration::from_secs(args.drift_sweep_secs.max(5));
    if let Some(smtp) = args.smtp {
        let (host, port) = match smtp.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                p.parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("WESTTEK_SMTP: '{p}' is not a port"))?,
            ),
            None => (smtp.clone(), 25),
        };
        let tls = match args.smtp_tls.as_str() {
            "none" => westtek_alerts::SmtpTls::None,
            "starttls" => westtek_alerts::SmtpTls::StartTls,
            "tls" => westtek_alerts::SmtpTls::Tls,
            other => anyhow::bail!("WESTTEK_SMTP_TLS: '{other}' is not none, starttls or tls"),
        };
        if args.alert_to.is_empty() {
            anyhow::bail!("WESTTEK_SMTP is set but WESTTEK_ALERT_TO names no recipient");
        }
        cfg.drift.smtp = Some(westtek_alerts::SmtpConfig {
            host,
            port,
            tls,
            username: args.smtp_user,
            password: args.smtp_password.map(Into::into),
            from: args.alert_from,
            to: args.alert_to.clone(),
        });
    }
    cfg.port = args.port;
    cfg.bind = args.bind;
    cfg.public_url = args.public_url;
    cfg.redis_url = args.redis_url;
    cfg.tools_dir = args.tools_dir;
    cfg.web_dir = args.web_dir.or_else(|| Some(PathBuf::from("web/dist")));
    cfg.idle_timeout =
        (args.jupyter_idle_timeout > 0).then(|| Duration::from_secs(args.jupyter_idle_timeout));
    cfg.first_lab = args.first_lab;
    cfg.vault_queue = westtek_platform::queue::QueueLimits {
        max_running: usize::from(args.vault_jobs),
        max_waiting_per_lab: usize::try_from(args.vault_queue_per_lab).unwrap_or(usize::MAX),
    };
    cfg.insecure_no_sandbox = args.insecure_no_sandbox;
    cfg.agent_upload_max_bytes = args.agent_upload_max_bytes;
    cfg.secure_browser_url = args.secure_browser_url;
    cfg.vault_url = args.vault_url;
    cfg.vault_kms_key_id = args.vault_kms_key_id;
    cfg.services = services;
    cfg.profile = args.profile;
    cfg.mongo = args.mongo_url.map(|url| MongoSettings {
        url: url.into(),
        database: args.mongo_database,
    });
    cfg.metadata_in_sqlite = args.metadata_in_sqlite;
    cfg.aws = app::AwsSettings {
        drift_table: args.drift_table,
        event_bus: args.event_bus,
        bus_queues: args.bus_queues,
        alert_ses_from: args.alert_ses_from,
        alert_to: if cfg.drift.smtp.is_none() {
            args.alert_to.clone()
        } else {
            Vec::new()
        },
        alert_sms: args.alert_sms,
        knowledge_url: args.knowledge_url,
        knowledge_base_id: args.knowledge_base_id,
        knowledge_data_source_id: args.knowledge_data_source_id,
        drift_agent: args.drift_agent_id.zip(args.drift_agent_alias_id),
        transfer_agent: args.transfer_agent_id.zip(args.transfer_agent_alias_id),
        agent_actions_token: args.agent_actions_token.map(Into::into),
    };
    cfg.cognito = args.cognito_issuer.map(|iss| {
        let mut c = westtek_auth::cognito::CognitoConfig::for_issuer(&iss, args.cognito_client_id);
        if let Some(j) = args.cognito_jwks_url {
            c.jwks_url = j;
        }
        c
    });
    cfg.validate()?;
    Ok(cfg)
}

async fn serve(cfg: UpConfig) -> anyhow::Result<()> {
    let mut running = app::start(cfg).await?;
    println!("West Tek is up at {}", running.url);
    let sandbox = &running.state.config.sandbox;
    match sandbox.mode.as_str() {
        "enforced" => {}
        "disabled" => eprintln!("WARNING: --insecure-no-sandbox: notebooks run as this platform's own user and can read its keys and every lab's files."),
        _ => eprintln!(
            "WARNING: no sandbox on this host, so Jupyter will not be launched: {}",
            sandbox.detail.as_deref().unwrap_or("unknown reason")
        ),
    }
    if let Some(f) = &running.first_login {
        if f.created_now {
            println!("First run: created lab and IT admin '{}'.", f.username);
        }
        println!("Sign in once with: {}", f.url);
    }
    println!(
        "API docs: {}/api/docs/  (Ctrl-C stops, and stops every Jupyter server)",
        running.url
    );
    tokio::select! {
        r = running.wait() => r?,
        _ = shutdown_signal() => {
            eprintln!("stopping: Jupyter servers first, then the API");
        }
    }
    running.shutdown().await
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::telemetry::init();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = rt.block_on(async move {
        match cli.command {
            Command::Up(args) => serve(up_config(
                args,
                vec![
                    Service::EnvManager,
                    Service::Snapshots,
                    Service::Drift,
                    Service::Knowledge,
                ],
            )?)
            .await
            .map(|_| ExitCode::SUCCESS),
            Command::Serve { service, args } => serve(up_config(args, vec![service])?)
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Admin { command, data } => admin::run_admin(command, &data.data_dir).await,
            Command::Audit { command, data } => admin::run_audit(command, &data.data_dir).await,
            Command::Login(args) => client::login(args).await.map(|_| ExitCode::SUCCESS),
            Command::Env { command } => client::run_env(command).await.map(|_| ExitCode::SUCCESS),
            Command::Snapshot { command } => client::run_snapshot(command)
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Drift { command } => {
                client::run_drift(command).await.map(|_| ExitCode::SUCCESS)
            }
            Command::Transfer { command } => client::run_transfer(command)
                .await
                .map(|_| ExitCode::SUCCESS),
            Command::Vault(args) => crate::vault_cli::run(args).await,
            Command::Agent { command } => {
                crate::agent::run(command).await.map(|_| ExitCode::SUCCESS)
            }
            Command::Openapi => {
                println!("{}", serde_json::to_string_pretty(&app::openapi())?);
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
