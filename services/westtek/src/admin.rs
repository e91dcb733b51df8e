//! `westtek admin …` and `westtek audit …`: operator commands that work on
//! a data dir directly (the platform may be running; SQLite serialises the
//! writers). They validate and audit exactly as the HTTP API does.

use crate::app::open_store;
use anyhow::{anyhow, bail, Context};
use clap::Subcommand;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use westtek_domain::audit::verify_chain;
use westtek_domain::ports::{AuditLog, MetadataStore, SystemClock};
use westtek_domain::{LabQuotas, Role};
use westtek_platform::ops::{self, Actor, NewUser};

/// Admin commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Labs.
    Lab {
        #[command(subcommand)]
        command: LabCommand,
    },
    /// Users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

/// Lab commands.
#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Create a lab.
    Create {
        /// Short name: letters, digits, '-', '_', '.'.
        name: String,
        #[arg(long)]
        display_name: Option<String>,
        #[arg(long, default_value_t = LabQuotas::default().max_environments)]
        max_environments: u32,
        #[arg(long, default_value_t = LabQuotas::default().max_running_servers)]
        max_running_servers: u32,
        /// Print the lab as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List labs.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// User commands.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user in a lab. Prints a one-time sign-in link unless a
    /// password is read from stdin.
    Create {
        username: String,
        /// Lab name or id.
        #[arg(long)]
        lab: String,
        /// researcher or lab_admin.
        #[arg(long, default_value = "researcher")]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
        /// Also make the user an IT admin.
        #[arg(long)]
        it_admin: bool,
        /// Read the password from stdin instead of issuing a sign-in link.
        #[arg(long)]
        password_stdin: bool,
        /// Public URL for the printed link.
        #[arg(
            long,
            env = "WESTTEK_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_url: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue a new one-time sign-in link for a user.
    SignInLink {
        username: String,
        #[arg(
            long,
            env = "WESTTEK_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        public_url: String,
    },
    /// List users.
    List {
        /// Only this lab (name or id).
        #[arg(long)]
        lab: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

/// Audit commands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the hash chain; names every edited, deleted or reordered entry.
    /// Exit 0 when intact, 1 when not.
    Verify {
        #[arg(long)]
        json: bool,
    },
}

const DAY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

async fn find_lab(store: &dyn MetadataStore, lab: &str) -> anyhow::Result<westtek_domain::Lab> {
    if let Ok(id) = westtek_domain::LabId::parse(lab) {
        return store
            .get_lab(id)
            .await
            .map_err(|_| anyhow!("no lab with id {lab}"));
    }
    store
        .find_lab_by_name(lab)
        .await?
        .ok_or_else(|| anyhow!("no lab named '{lab}' (see `westtek admin lab list`)"))
}

fn require_data_dir(dir: &Path) -> anyhow::Result<()> {
    if !dir.join("meta.db").is_file() {
        bail!(
            "{} is not a West Tek data dir (no meta.db); run `westtek up --data-dir {}` first",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

/// Runs an admin command.
///
/// # Errors
/// Validation and store errors, worded for the operator.
pub async fn run_admin(cmd: AdminCommand, data_dir: &Path) -> anyhow::Result<ExitCode> {
    require_data_dir(data_dir)?;
    let store = open_store(data_dir).await?;
    let clock = SystemClock;
    let actor = Actor::local_operator();
    match cmd {
        AdminCommand::Lab {
            command:
                LabCommand::Create {
                    name,
                    display_name,
                    max_environments,
                    max_running_servers,
                    json,
                },
        } => {
            let quotas = LabQuotas {
                max_environments,
                max_running_servers,
                ..LabQuotas::default()
            };
            let lab = ops::create_lab(
                &store,
                &clock,
                &actor,
                &name,
                display_name.as_deref(),
                Some(quotas),
            )
            .await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "id": lab.id.to_string(), "name": lab.name, "status": "created" })
                );
            } else {
                println!("created lab {} ({})", lab.name, lab.id);
            }
        }
        AdminCommand::Lab {
            command: LabCommand::List { json },
        } => {
            let labs = store.list_labs().await?;
            if json {
                let rows: Vec<_> = labs
                    .iter()
                    .map(|l| serde_json::json!({ "id": l.id.to_string(), "name": l.name, "display_name": l.display_name, "quotas": l.quotas }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for l in labs {
                    println!(
                        "{}  {}  (max {} environments, {} running servers)",
                        l.id, l.name, l.quotas.max_environments, l.quotas.max_running_servers
                    );
                }
            }
        }
        AdminCommand::User {
            command:
                UserCommand::Create {
                    username,
                    lab,
                    role,
                    display_name,
                    it_admin,
                    password_stdin,
                    public_url,
                    json,
                },
        } => {
            let lab = find_lab(&store, &lab).await?;
            let role = Role::parse(&role).map_err(|e| anyhow!("{e}"))?;
            let password = if password_stdin {
                let mut s = String::new();
                std::io::stdin()
                    .read_to_string(&mut s)
                    .context("cannot read the password from stdin")?;
                Some(s.trim_end_matches(['\n', '\r']).to_string())
            } else {
                None
            };
            let created = ops::create_user(
                &store,
                &clock,
                &actor,
                NewUser {
                    username: &username,
                    display_name: display_name.as_deref(),
                    membership: Some((lab.id, role)),
                    it_admin,
                    password: password.as_deref(),
                    one_time_ttl: DAY,
                    one_time_secret: None,
                },
            )
            .await?;
            let link = created.one_time_token.as_ref().map(|t| {
                format!(
                    "{}/api/auth/login?token={t}",
                    public_url.trim_end_matches('/')
                )
            });
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": created.user.id.to_string(), "name": created.user.username, "status": "created",
                        "lab_id": lab.id.to_string(), "role": role.as_str(), "sign_in_url": link, "sign_in_token": created.one_time_token,
                    })
                );
            } else {
                println!(
                    "created {} ({}) as {} in {}",
                    created.user.username,
                    created.user.id,
                    role.as_str(),
                    lab.name
                );
                if let Some(l) = link {
                    println!("one-time sign-in link (valid 24 h): {l}");
                }
            }
        }
        AdminCommand::User {
            command:
                UserCommand::SignInLink {
                    username,
                    public_url,
                },
        } => {
            let u = store
                .find_user_by_username(&username)
                .await?
                .ok_or_else(|| anyhow!("no user named '{username}'"))?;
            let token = ops::issue_sign_in_token(&store, &clock, &actor, u.user.id, DAY).await?;
            println!(
                "{}/api/auth/login?token={token}",
                public_url.trim_end_matches('/')
            );
        }
        AdminCommand::User {
            command: UserCommand::List { lab, json },
        } => {
            let lab_id = match lab {
                Some(l) => Some(find_lab(&store, &l).await?.id),
                None => None,
            };
            let users = store.list_users(lab_id).await?;
            if json {
                let rows: Vec<_> = users
                    .iter()
                    .map(|u| serde_json::json!({ "id": u.id.to_string(), "name": u.username, "display_name": u.display_name, "it_admin": u.it_admin }))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for u in users {
                    println!(
                        "{}  {}{}",
                        u.id,
                        u.username,
                        if u.it_admin { "  (it_admin)" } else { "" }
                    );
                }
            }
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// Runs an audit command.
///
/// # Errors
/// Store errors.
pub async fn run_audit(cmd: AuditCommand, data_dir: &Path) -> anyhow::Result<ExitCode> {
    require_data_dir(data_dir)?;
    let store = open_store(data_dir).await?;
    let AuditCommand::Verify { json } = cmd;
    let (entries, head) = store.audit_chain().await?;
    store.close().await;
    let problems = verify_chain(&entries, head.as_ref());
    if json {
        println!(
            "{}",
            serde_json::json!({
                "status": if problems.is_empty() { "intact" } else { "tampered" },
                "entries": entries.len(),
                "problems": problems,
            })
        );
    } else if problems.is_empty() {
        println!(
            "audit trail intact: {} entries, chain head #{}",
            entries.len(),
            head.map_or(0, |h| h.seq)
        );
    } else {
        eprintln!(
            "audit trail TAMPERED: {} problem(s) in {} entries",
            problems.len(),
            entries.len()
        );
        for p in &problems {
            eprintln!("  - {p}");
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
