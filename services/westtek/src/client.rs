//! Commands that talk to a running platform over HTTP: `westtek login` and
//! `westtek env …`. The session comes from `WESTTEK_URL` + `WESTTEK_TOKEN`
//! or from the file `westtek login` writes (`~/.config/westtek/
//! credentials.json`, mode 0600), refreshed when its access token expired.

use crate::app::write_private_file;
use anyhow::{anyhow, bail, Context};
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use std::io::BufRead;
use std::path::PathBuf;

/// `westtek login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// The platform's URL.
    #[arg(long, env = "WESTTEK_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Sign in with this username (password read from stdin).
    #[arg(long)]
    pub username: Option<String>,
    /// Read the password from stdin without prompting.
    #[arg(long)]
    pub password_stdin: bool,
    /// Sign in with a one-time token or the whole sign-in link.
    #[arg(long)]
    pub token: Option<String>,
}

/// `westtek env …`.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// List the lab's environments.
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Create an environment and follow its build.
    Create {
        name: String,
        /// A package to install, optionally pinned (repeatable): -p numpy -p 'pandas>=2'.
        #[arg(short = 'p', long = "package")]
        packages: Vec<String>,
        /// Python version, e.g. 3.11.
        #[arg(long)]
        python: Option<String>,
        #[arg(long)]
        experiment_id: Option<String>,
        #[arg(long)]
        funding_source: Option<String>,
        /// low, medium, high or critical.
        #[arg(long)]
        criticality: Option<String>,
        /// Return once accepted, without following the build.
        #[arg(long)]
        no_wait: bool,
        #[arg(long)]
        json: bool,
    },
    /// Show one environment.
    Show { id: String },
    /// Delete an environment and its files.
    Delete { id: String },
    /// Start JupyterLab and print its URL.
    Launch {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Stop JupyterLab.
    Stop { id: String },
}

/// `westtek snapshot …`.
#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Snapshot an environment and follow the job.
    Create {
        /// Environment id.
        environment: String,
        /// Why (kept with the snapshot).
        #[arg(long)]
        notes: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// List snapshots (of one environment, or of the lab).
    List {
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Show one snapshot.
    Show { id: String },
    /// What changed from snapshot A to snapshot B.
    Diff {
        a: String,
        b: String,
        #[arg(long)]
        json: bool,
    },
    /// Restore a snapshot into a new environment (default) or in place.
    Restore {
        id: String,
        /// Restore over the snapshot's own environment (its current state is
        /// snapshotted first).
        #[arg(long)]
        in_place: bool,
        /// Name of the new environment.
        #[arg(long)]
        name: Option<String>,
    },
    /// Run a restore drill: restore to a scratch dir and import what the
    /// notebooks import.
    Drill { id: String },
    /// Delete a snapshot.
    Delete { id: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Credentials {
    url: String,
    access_token: String,
    expires_at: DateTime<Utc>,
    refresh_token: Option<String>,
}

fn credentials_path() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .ok_or_else(|| anyhow!("neither XDG_CONFIG_HOME nor HOME is set"))?;
    Ok(base.join("westtek").join("credentials.json"))
}

fn save(c: &Credentials) -> anyhow::Result<()> {
    let p = credentials_path()?;
    if let Some(dir) = p.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private_file(&p, &serde_json::to_string_pretty(c)?)
}

async fn problem_error(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    match resp.json::<serde_json::Value>().await {
        Ok(v) if v.get("code").is_some() => anyhow!(
            "{} ({}, HTTP {})",
            v["detail"].as_str().unwrap_or("request failed"),
            v["code"].as_str().unwrap_or("error"),
            status.as_u16()
        ),
        _ => anyhow!("request failed with HTTP {}", status.as_u16()),
    }
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    expires_at: DateTime<Utc>,
    refresh_token: String,
    user: serde_json::Value,
}

async fn exchange(url: &str, body: serde_json::Value) -> anyhow::Result<TokenBody> {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/auth/token", url.trim_end_matches('/')))
        .json(&body)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    if !resp.status().is_success() {
        return Err(problem_error(resp).await);
    }
    Ok(resp.json().await?)
}

/// Signs in and saves the session.
///
/// # Errors
/// Wrong credentials, unreachable platform.
pub async fn login(args: LoginArgs) -> anyhow::Result<()> {
    let body = match (&args.token, &args.username) {
        (Some(t), _) => {
            // Accept the whole link as printed by `westtek up`.
            let token = t
                .split("token=")
                .nth(1)
                .map(|s| s.split('&').next().unwrap_or(s))
                .unwrap_or(t);
            serde_json::json!({ "grant_type": "one_time_token", "token": token })
        }
        (None, Some(u)) => {
            if !args.password_stdin {
                eprint!("password for {u}: ");
            }
            let mut pw = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut pw)
                .context("cannot read the password")?;
            serde_json::json!({ "grant_type": "password", "username": u, "password": pw.trim_end_matches(['\n', '\r']) })
        }
        (None, None) => bail!("give --username NAME (password on stdin) or --token TOKEN_OR_LINK"),
    };
    let t = exchange(&args.url, body).await?;
    save(&Credentials {
        url: args.url.trim_end_matches('/').to_string(),
        access_token: t.access_token,
        expires_at: t.expires_at,
        refresh_token: Some(t.refresh_token),
    })?;
    println!(
        "signed in to {} as {}",
        args.url,
        t.user["username"].as_str().unwrap_or("?")
    );
    Ok(())
}

/// An authenticated API client.
struct Api {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Api {
    async fn connect() -> anyhow::Result<Self> {
        let http = reqwest::Client::new();
        if let (Ok(url), Ok(token)) = (std::env::var("WESTTEK_URL"), std::env::var("WESTTEK_TOKEN"))
        {
            return Ok(Api {
                base: url.trim_end_matches('/').into(),
                http,
                token,
            });
        }
        let path = credentials_path()?;
        let text = std::fs::read_to_string(&path).map_err(|_| {
            anyhow!("not signed in: run `westtek login` (or set WESTTEK_URL and WESTTEK_TOKEN)")
        })?;
        let mut c: Credentials = serde_json::from_str(&text)
            .with_context(|| format!("{} is damaged; run `westtek login`", path.display()))?;
        if let Ok(url) = std::env::var("WESTTEK_URL") {
            if url.trim_end_matches('/') != c.url {
                bail!(
                    "WESTTEK_URL is {url} but the saved session is for {}; set WESTTEK_TOKEN too, or `westtek login --url {url}`",
                    c.url
                );
            }
        }
        if c.expires_at <= Utc::now() + chrono::Duration::seconds(30) {
            let refresh = c
                .refresh_token
                .clone()
                .ok_or_else(|| anyhow!("session expired: run `westtek login`"))?;
            let t = exchange(
                &c.url,
                serde_json::json!({ "grant_type": "refresh_token", "token": refresh }),
            )
            .await
            .map_err(|e| anyhow!("session expired ({e}); run `westtek login`"))?;
            c.access_token = t.access_token;
            c.expires_at = t.expires_at;
            c.refresh_token = Some(t.refresh_token);
            save(&c)?;
        }
        Ok(Api {
            base: c.url,
            http,
            token: c.access_token,
        })
    }

    fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Ok(lab) = std::env::var("WESTTEK_LAB") {
            r = r.header("x-westtek-lab", lab);
        }
        r
    }

    async fn send(&self, r: reqwest::RequestBuilder) -> anyhow::Result<serde_json::Value> {
        let resp = r
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))?;
        if !resp.status().is_success() {
            return Err(problem_error(resp).await);
        }
        if resp.status() == reqwest::StatusCode::NO_CONTENT {
            return Ok(serde_json::Value::Null);
        }
        Ok(resp.json().await?)
    }

    /// Follows a job's SSE stream with a progress bar; returns the final job.
    async fn follow_job(&self, job_id: &str, show: bool) -> anyhow::Result<serde_json::Value> {
        let resp = self
            .req(reqwest::Method::GET, &format!("/api/jobs/{job_id}/events"))
            .send()
            .await?;
        if !resp.status().is_success() {
            return Err(problem_error(resp).await);
        }
        let bar = if show {
            ProgressBar::new(100)
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos:>3}% {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        let mut buf = String::new();
        let mut stream = resp.bytes_stream();
        let mut last = serde_json::Value::Null;
        while let Some(chunk) = stream.next().await {
            buf.push_str(&String::from_utf8_lossy(&chunk?));
            while let Some(end) = buf.find("\n\n") {
                let event: String = buf.drain(..end + 2).collect();
                let data: String = event
                    .lines()
                    .filter_map(|l| l.strip_prefix("data:"))
                    .map(str::trim_start)
                    .collect();
                if data.is_empty() {
                    continue;
                }
                let job: serde_json::Value = serde_json::from_str(&data)?;
                bar.set_position((job["progress"].as_f64().unwrap_or(0.0) * 100.0) as u64);
                bar.set_message(job["message"].as_str().unwrap_or("").to_string());
                last = job;
                if matches!(last["status"].as_str(), Some("succeeded" | "failed")) {
                    bar.finish_and_clear();
                    return Ok(last);
                }
            }
        }
        bar.finish_and_clear();
        if last.is_null() {
            bail!("the job's progress stream ended early; check `GET /api/jobs/{job_id}`");
        }
        Ok(last)
    }
}

fn print_env_row(e: &serde_json::Value) {
    println!(
        "{}  {:<24} {:<12} jupyter:{:<8} {}",
        e["id"].as_str().unwrap_or(""),
        e["name"].as_str().unwrap_or(""),
        e["status"].as_str().unwrap_or(""),
        e["jupyter_status"].as_str().unwrap_or(""),
        e["drift_status"].as_str().unwrap_or("")
    );
}

/// Runs an environment command.
///
/// # Errors
/// API errors, worded from the problem response.
pub async fn run_env(cmd: EnvCommand) -> anyhow::Result<()> {
    // Ids go into URL paths: accept only real ids.
    if let EnvCommand::Show { id }
    | EnvCommand::Delete { id }
    | EnvCommand::Launch { id, .. }
    | EnvCommand::Stop { id } = &cmd
    {
        westtek_domain::EnvironmentId::parse(id)
            .map_err(|_| anyhow!("'{id}' is not an environment id (see `westtek env list`)"))?;
    }
    let api = Api::connect().await?;
    use reqwest::Method;
    match cmd {
        EnvCommand::List { json, limit } => {
            let page = api
                .send(api.req(Method::GET, &format!("/api/environments?limit={limit}")))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page["items"])?);
            } else {
                for e in page["items"].as_array().into_iter().flatten() {
                    print_env_row(e);
                }
                println!(
                    "({} of {})",
                    page["items"].as_array().map_or(0, |a| a.len()),
                    page["total"]
                );
            }
        }
        EnvCommand::Create {
            name,
            packages,
            python,
            experiment_id,
            funding_source,
            criticality,
            no_wait,
            json,
        } => {
            let body = serde_json::json!({
                "name": name, "python_version": python, "packages": packages,
                "metadata": { "experiment_id": experiment_id, "funding_source": funding_source, "criticality": criticality },
            });
            let accepted = api
                .send(api.req(Method::POST, "/api/environments").json(&body))
                .await?;
            let job_id = accepted["job_id"].as_str().unwrap_or_default().to_string();
            let env_id = accepted["environment_id"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if no_wait {
                println!(
                    "{}",
                    if json {
                        accepted.to_string()
                    } else {
                        format!("accepted: environment {env_id}, job {job_id}")
                    }
                );
                return Ok(());
            }
            let job = api.follow_job(&job_id, !json).await?;
            if job["status"] == "failed" {
                bail!(
                    "building {name} failed: {} ({})",
                    job["error"]["message"].as_str().unwrap_or("unknown error"),
                    job["error"]["code"].as_str().unwrap_or("error")
                );
            }
            let env = api
                .send(api.req(Method::GET, &format!("/api/environments/{env_id}")))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&env)?);
            } else {
                println!("{}", job["message"].as_str().unwrap_or("ready"));
                print_env_row(&env);
            }
        }
        EnvCommand::Show { id } => {
            let env = api
                .send(api.req(Method::GET, &format!("/api/environments/{id}")))
                .await?;
            println!("{}", serde_json::to_string_pretty(&env)?);
        }
        EnvCommand::Delete { id } => {
            api.send(api.req(Method::DELETE, &format!("/api/environments/{id}")))
                .await?;
            println!("deleted {id}");
        }
        EnvCommand::Launch { id, json } => {
            let r = api
                .send(
                    api.req(Method::POST, "/api/environments/jupyter")
                        .json(&serde_json::json!({ "environment_id": id })),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "JupyterLab is running: {}",
                    r["jupyter_url"].as_str().unwrap_or("")
                );
                println!("(open it in a browser signed in to the platform)");
            }
        }
        EnvCommand::Stop { id } => {
            api.send(api.req(Method::DELETE, &format!("/api/environments/{id}/jupyter")))
                .await?;
            println!("stopped Jupyter for {id}");
        }
    }
    Ok(())
}

fn check_id(kind: &str, id: &str) -> anyhow::Result<()> {
    uuid_like(id)
        .then_some(())
        .ok_or_else(|| anyhow!("'{id}' is not a {kind} id"))
}

fn uuid_like(s: &str) -> bool {
    westtek_domain::SnapshotId::parse(s).is_ok()
}

/// Follows a job to its end, failing with its reason.
async fn finish_job(
    api: &Api,
    accepted: &serde_json::Value,
    what: &str,
    show: bool,
) -> anyhow::Result<serde_json::Value> {
    let job_id = accepted["job_id"].as_str().unwrap_or_default().to_string();
    let job = api.follow_job(&job_id, show).await?;
    if job["status"] == "failed" {
        bail!(
            "{what} failed: {} ({})",
            job["error"]["message"].as_str().unwrap_or("unknown error"),
            job["error"]["code"].as_str().unwrap_or("error")
        );
    }
    Ok(job)
}

/// Runs a snapshot command.
///
/// # Errors
/// API errors, worded from the problem response.
pub async fn run_snapshot(cmd: SnapshotCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    match &cmd {
        SnapshotCommand::Create {
            environment: id, ..
        } => check_id("environment", id)?,
        SnapshotCommand::Show { id }
        | SnapshotCommand::Restore { id, .. }
        | SnapshotCommand::Drill { id }
        | SnapshotCommand::Delete { id } => check_id("snapshot", id)?,
        SnapshotCommand::Diff { a, b, .. } => {
            check_id("snapshot", a)?;
            check_id("snapshot", b)?
        }
        SnapshotCommand::List {
            environment: Some(id),
            ..
        } => check_id("environment", id)?,
        SnapshotCommand::List { .. } => {}
    }
    let api = Api::connect().await?;
    match cmd {
        SnapshotCommand::Create {
            environment,
            notes,
            json,
        } => {
            let acc = api
                .send(
                    api.req(Method::POST, "/api/environments/snapshot").json(
                        &serde_json::json!({ "environment_id": environment, "notes": notes }),
                    ),
                )
                .await?;
            let job = finish_job(&api, &acc, "the snapshot", !json).await?;
            let snap = api
                .send(api.req(
                    Method::GET,
                    &format!(
                        "/api/snapshots/{}",
                        acc["snapshot_id"].as_str().unwrap_or("")
                    ),
                ))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&snap)?);
            } else {
                println!("{}", job["message"].as_str().unwrap_or("complete"));
                println!("checksum {}", snap["checksum"].as_str().unwrap_or("-"));
            }
        }
        SnapshotCommand::List { environment, json } => {
            let path = match environment {
                Some(e) => format!("/api/snapshots?environment_id={e}&limit=500"),
                None => "/api/snapshots?limit=500".into(),
            };
            let page = api.send(api.req(Method::GET, &path)).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page["items"])?);
            } else {
                for s in page["items"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {}  {:<9} {:>12} bytes  env {}  {}",
                        s["id"].as_str().unwrap_or(""),
                        s["timestamp"].as_str().unwrap_or(""),
                        s["status"].as_str().unwrap_or(""),
                        s["size_bytes"],
                        s["environment_id"].as_str().unwrap_or(""),
                        s["metadata"]["notes"].as_str().unwrap_or("")
                    );
                }
            }
        }
        SnapshotCommand::Show { id } => {
            let s = api
                .send(api.req(Method::GET, &format!("/api/snapshots/{id}")))
                .await?;
            println!("{}", serde_json::to_string_pretty(&s)?);
        }
        SnapshotCommand::Diff { a, b, json } => {
            let d = api
                .send(api.req(Method::GET, &format!("/api/snapshots/{a}/diff/{b}")))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&d)?);
            } else {
                for f in d["findings"].as_array().into_iter().flatten() {
                    println!(
                        "{:<8} {:<18} {}  {} → {}",
                        f["severity"].as_str().unwrap_or(""),
                        f["kind"].as_str().unwrap_or(""),
                        f["subject"].as_str().unwrap_or(""),
                        f["before"].as_str().unwrap_or("-"),
                        f["after"].as_str().unwrap_or("-")
                    );
                }
                println!(
                    "{} file change(s)",
                    d["files"].as_array().map_or(0, |a| a.len())
                );
            }
        }
        SnapshotCommand::Restore { id, in_place, name } => {
            let body = if in_place {
                serde_json::json!({ "mode": "in_place" })
            } else {
                serde_json::json!({ "mode": "new_environment", "name": name })
            };
            let acc = api
                .send(
                    api.req(Method::POST, &format!("/api/snapshots/{id}/restore"))
                        .json(&body),
                )
                .await?;
            let job = finish_job(&api, &acc, "the restore", true).await?;
            println!("{}", job["message"].as_str().unwrap_or("restored"));
        }
        SnapshotCommand::Drill { id } => {
            let acc = api
                .send(api.req(Method::POST, &format!("/api/snapshots/{id}/drill")))
                .await?;
            let job = finish_job(&api, &acc, "the drill", true).await?;
            println!("{}", job["message"].as_str().unwrap_or("done"));
            if job["message"]
                .as_str()
                .is_some_and(|m| m.contains("FAILED"))
            {
                bail!("the restore drill failed");
            }
        }
        SnapshotCommand::Delete { id } => {
            api.send(api.req(Method::DELETE, &format!("/api/snapshots/{id}")))
                .await?;
            println!("deleted {id}");
        }
    }
    Ok(())
}
