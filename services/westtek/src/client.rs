//! Commands that talk to a running platform over HTTP: `westtek login`,
//! `westtek env …`, `westtek snapshot …` and `westtek drift …`. The session
//! comes from `WESTTEK_URL` + `WESTTEK_TOKEN` or from the file `westtek
//! login` writes (`~/.config/westtek/credentials.json`, mode 0600),
//! refreshed when its access token expired.

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

/// `westtek drift …`.
#[derive(Debug, Subcommand)]
pub enum DriftCommand {
    /// Drift of the lab's environments; with an environment id, its
    /// baseline, findings and the Drift Analyzer's latest analysis.
    Status {
        /// Environment id (default: every environment of the lab).
        environment: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Drift events, newest first.
    Events {
        /// Only this environment's events (id).
        #[arg(long)]
        env: Option<String>,
        /// From this time on (RFC 3339, inclusive).
        #[arg(long, value_parser = parse_time)]
        since: Option<DateTime<Utc>>,
        /// Before this time (RFC 3339, exclusive).
        #[arg(long, value_parser = parse_time)]
        until: Option<DateTime<Utc>>,
        /// At most this many events (1–1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Print drift events as they happen; reconnects after a dropped
    /// connection without losing events. Ctrl-C stops.
    Watch {
        /// Only this environment's events (id).
        #[arg(long)]
        env: Option<String>,
    },
    /// Accept the present state: snapshot it and make it the baseline.
    Accept {
        /// Environment id.
        environment: String,
    },
    /// Restore the baseline (or `--snapshot`) in place; the present state is
    /// snapshotted first. Jupyter must be stopped.
    Rollback {
        /// Environment id.
        environment: String,
        /// Roll back to this snapshot of the environment instead of the baseline.
        #[arg(long)]
        snapshot: Option<String>,
    },
    /// Ask the Drift Analyzer about an environment's drift.
    Ask {
        /// Environment id.
        environment: String,
        /// The question.
        question: String,
        /// Also show the tools the analyzer called (on stderr).
        #[arg(long)]
        trace: bool,
    },
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

pub(crate) async fn problem_error(resp: reqwest::Response) -> anyhow::Error {
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
pub(crate) struct Api {
    base: String,
    http: reqwest::Client,
    token: String,
}

impl Api {
    pub(crate) async fn connect() -> anyhow::Result<Self> {
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

    /// Where the platform is.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) fn req(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut r = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .bearer_auth(&self.token);
        if let Ok(lab) = std::env::var("WESTTEK_LAB") {
            r = r.header("x-westtek-lab", lab);
        }
        r
    }

    pub(crate) async fn send(
        &self,
        r: reqwest::RequestBuilder,
    ) -> anyhow::Result<serde_json::Value> {
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

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("'{s}' is not an RFC 3339 time (e.g. 2025-01-31T09:00:00Z)"))
}

fn check_env_id(id: &str) -> anyhow::Result<()> {
    westtek_domain::EnvironmentId::parse(id)
        .map(|_| ())
        .map_err(|_| anyhow!("'{id}' is not an environment id (see `westtek env list`)"))
}

/// Prints rows under headers, each column as wide as its widest cell.
fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (cell, w) in cells.zip(&widths) {
            out.push_str(cell);
            out.extend(std::iter::repeat_n(
                ' ',
                w.saturating_sub(cell.chars().count()) + 2,
            ));
        }
        println!("{}", out.trim_end());
    };
    line(&mut headers.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

/// An RFC 3339 time as `2025-01-31T09:00:00Z` (to the second, UTC).
fn short_time(v: &serde_json::Value) -> String {
    v.as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| {
            t.with_timezone(&Utc)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string()
        })
        .unwrap_or_else(|| v.as_str().unwrap_or("-").to_string())
}

fn text_or<'a>(v: &'a serde_json::Value, default: &'a str) -> &'a str {
    v.as_str().unwrap_or(default)
}

/// A finding's kind: `package_added`, `config_changed (modified)`, …
fn kind_name(kind: &serde_json::Value) -> String {
    match kind {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Object(o) => {
            let name = o.get("type").and_then(|t| t.as_str()).unwrap_or("?");
            match o.get("change").and_then(|c| c.as_str()) {
                Some(change) => format!("{name} ({change})"),
                None => name.to_string(),
            }
        }
        _ => "?".into(),
    }
}

/// `tabulate 0.9.0 → 0.8.10`, `- → 1.2`, …
fn finding_change(f: &serde_json::Value) -> String {
    format!(
        "{} → {}",
        text_or(&f["before"], "-"),
        text_or(&f["after"], "-")
    )
}

/// The first few findings of an event in one line.
fn findings_summary(findings: &serde_json::Value, shown: usize) -> String {
    let all = findings.as_array().map(Vec::as_slice).unwrap_or_default();
    if all.is_empty() {
        return "back at the baseline".into();
    }
    let mut parts: Vec<String> = all
        .iter()
        .take(shown)
        .map(|f| format!("{} {}", text_or(&f["subject"], "?"), finding_change(f)))
        .collect();
    if all.len() > shown {
        parts.push(format!("+{} more", all.len() - shown));
    }
    parts.join(", ")
}

fn notebooks_cell(v: &serde_json::Value) -> String {
    let list: Vec<&str> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
        .collect();
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

/// A recommendation (`{kind: {type, …}, reason}` or `{kind: "none"}`) in a line.
fn recommendation_line(r: &serde_json::Value) -> Option<String> {
    let kind = &r["kind"];
    let what = match kind["type"].as_str().or(kind.as_str())? {
        "none" => return None,
        "snapshot" => "accept the present state (snapshot it as the new baseline)".to_string(),
        "rollback" => format!(
            "roll back to snapshot {}",
            text_or(&kind["target_snapshot_id"], "?")
        ),
        "pin" => format!(
            "pin {}=={}",
            text_or(&kind["package"], "?"),
            text_or(&kind["version"], "?")
        ),
        other => other.to_string(),
    };
    Some(match r["reason"].as_str() {
        Some(why) if !why.is_empty() => format!("{what} — {why}"),
        _ => what,
    })
}

/// Every environment of the lab (all pages), newest first.
async fn all_environments(api: &Api) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut out = Vec::new();
    loop {
        let page = api
            .send(api.req(
                reqwest::Method::GET,
                &format!("/api/environments?limit=500&offset={}", out.len()),
            ))
            .await?;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let n = items.len();
        out.extend(items);
        if n < 500 || out.len() as u64 >= page["total"].as_u64().unwrap_or(0) {
            return Ok(out);
        }
    }
}

/// Environment names by id.
async fn environment_names(api: &Api) -> anyhow::Result<std::collections::HashMap<String, String>> {
    Ok(all_environments(api)
        .await?
        .into_iter()
        .filter_map(|e| {
            Some((
                e["id"].as_str()?.to_string(),
                e["name"].as_str()?.to_string(),
            ))
        })
        .collect())
}

/// One server-sent event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SseEvent {
    /// The `event:` field (`message` when the server named none).
    event: String,
    /// The `data:` lines, joined with `\n`.
    data: String,
    /// The stream's last `id:` as of this event.
    id: Option<String>,
}

/// A line longer than this ends the stream (a broken or hostile server).
const MAX_SSE_LINE: usize = 16 << 20;

/// Incremental `text/event-stream` parser (WHATWG): lines end in LF, CR or
/// CRLF, also when split across chunks; lines starting with `:` are comments
/// (keep-alives); a blank line ends an event; an event without data is
/// not dispatched; the last `id:` carries over to later events.
#[derive(Debug, Default)]
struct SseParser {
    line: Vec<u8>,
    /// The previous byte was a CR: a following LF belongs to it.
    after_cr: bool,
    event: String,
    data: String,
    has_data: bool,
    last_id: Option<String>,
}

impl SseParser {
    /// Feeds bytes; returns the events they completed.
    fn push(&mut self, bytes: &[u8]) -> anyhow::Result<Vec<SseEvent>> {
        let mut out = Vec::new();
        for &b in bytes {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            if b == b'\n' || b == b'\r' {
                self.after_cr = b == b'\r';
                let line = std::mem::take(&mut self.line);
                out.extend(self.end_line(&line));
            } else if self.line.len() >= MAX_SSE_LINE {
                bail!("the server sent a line of more than {MAX_SSE_LINE} bytes");
            } else {
                self.line.push(b);
            }
        }
        Ok(out)
    }

    fn end_line(&mut self, line: &[u8]) -> Option<SseEvent> {
        if line.is_empty() {
            let event = std::mem::take(&mut self.event);
            let mut data = std::mem::take(&mut self.data);
            if !std::mem::take(&mut self.has_data) {
                return None;
            }
            data.pop(); // the newline after the last data line
            return Some(SseEvent {
                event: if event.is_empty() {
                    "message".into()
                } else {
                    event
                },
                data,
                id: self.last_id.clone(),
            });
        }
        let line = String::from_utf8_lossy(line);
        if line.starts_with(':') {
            return None;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = value.to_string(),
            "data" => {
                self.data.push_str(value);
                self.data.push('\n');
                self.has_data = true;
            }
            "id" if !value.contains('\0') => {
                self.last_id = Some(value.to_string()).filter(|v| !v.is_empty());
            }
            _ => {} // `retry` and unknown fields
        }
        None
    }
}

/// An error and its causes in one line (reqwest's own text names no cause).
fn causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = cause.source();
    }
    out
}

/// How one connection of `drift watch` ended.
enum Dropped {
    /// Reconnect after a pause: the connection failed or ended.
    Retry { why: String, received: bool },
    /// The token was refused (expired during a long watch).
    Unauthorized,
}

/// No bytes for this long (the server sends a keep-alive every 15 s): the
/// connection is dead even if TCP has not noticed.
const WATCH_IDLE: std::time::Duration = std::time::Duration::from_secs(45);

/// Prints a drift event of the live stream in one line.
async fn print_live_event(
    api: &Api,
    names: &mut std::collections::HashMap<String, String>,
    ev: &serde_json::Value,
) {
    let env_id = text_or(&ev["environment_id"], "?").to_string();
    if !names.contains_key(&env_id) && check_env_id(&env_id).is_ok() {
        // Created after the watch started.
        if let Ok(e) = api
            .send(api.req(reqwest::Method::GET, &format!("/api/environments/{env_id}")))
            .await
        {
            if let Some(n) = e["name"].as_str() {
                names.insert(env_id.clone(), n.to_string());
            }
        }
    }
    let name = names.get(&env_id).cloned().unwrap_or(env_id);
    println!(
        "{}  #{:<5} {:<20} {} → {:<14} {:<8} {}",
        short_time(&ev["detected_at"]),
        ev["seq"].as_u64().unwrap_or(0),
        name,
        text_or(&ev["previous_status"], "?"),
        text_or(&ev["status"], "?"),
        text_or(&ev["severity"], "-"),
        findings_summary(&ev["findings"], 3)
    );
}

/// One connection to the live stream, until it ends. `last_id` is the last
/// event printed: sent as `Last-Event-ID` and moved on as events arrive.
/// `announce` is printed (to stderr) once the stream is open: from then on
/// no event is missed.
async fn watch_once(
    api: &Api,
    env: Option<&str>,
    last_id: &mut Option<String>,
    names: &mut std::collections::HashMap<String, String>,
    announce: &mut Option<String>,
) -> anyhow::Result<Dropped> {
    let mut r = api.req(reqwest::Method::GET, "/api/drift/stream");
    if let Some(e) = env {
        r = r.query(&[("environment_id", e)]);
    }
    if let Some(id) = last_id.as_deref() {
        r = r.header("last-event-id", id);
    }
    let resp = match r.send().await {
        Ok(resp) => resp,
        Err(e) => {
            return Ok(Dropped::Retry {
                why: format!("cannot reach {}: {}", api.base, causes(&e)),
                received: false,
            })
        }
    };
    let status = resp.status();
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Ok(Dropped::Unauthorized);
    }
    if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
        return Ok(Dropped::Retry {
            why: format!("the platform answered HTTP {}", status.as_u16()),
            received: false,
        });
    }
    if !status.is_success() {
        // Forbidden, not found, invalid: retrying will not help.
        return Err(problem_error(resp).await);
    }
    if let Some(msg) = announce.take() {
        eprintln!("{msg}");
    }
    let mut stream = resp.bytes_stream();
    let mut parser = SseParser::default();
    let mut received = false;
    loop {
        let chunk = match tokio::time::timeout(WATCH_IDLE, stream.next()).await {
            Err(_) => {
                return Ok(Dropped::Retry {
                    why: format!("nothing received for {} s", WATCH_IDLE.as_secs()),
                    received,
                })
            }
            Ok(None) => {
                return Ok(Dropped::Retry {
                    why: "the platform closed the stream".into(),
                    received,
                })
            }
            Ok(Some(Err(e))) => {
                return Ok(Dropped::Retry {
                    why: format!("connection lost: {}", causes(&e)),
                    received,
                })
            }
            Ok(Some(Ok(bytes))) => bytes,
        };
        received = true;
        let events = match parser.push(&chunk) {
            Ok(ev) => ev,
            Err(e) => {
                return Ok(Dropped::Retry {
                    why: e.to_string(),
                    received,
                })
            }
        };
        for ev in events.into_iter().filter(|e| e.event == "drift") {
            match serde_json::from_str::<serde_json::Value>(&ev.data) {
                Ok(v) => print_live_event(api, names, &v).await,
                Err(e) => eprintln!("(skipped an unreadable drift event: {e})"),
            }
            // Only past a printed event: a reconnect resumes right after it.
            if ev.id.is_some() {
                last_id.clone_from(&ev.id);
            }
        }
    }
}

/// `westtek drift watch`: the live stream, reconnecting with
/// `Last-Event-ID` and a doubling pause (1 s … 30 s) after a drop; Ctrl-C
/// ends it with success.
async fn watch(mut api: Api, env: Option<String>) -> anyhow::Result<()> {
    use std::time::Duration;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let run = async {
        let mut names = environment_names(&api).await?;
        let mut last_id: Option<String> = None;
        let mut pause = Duration::from_secs(1);
        let mut announce = Some(format!(
            "watching drift events{} on {} (Ctrl-C stops)",
            env.as_deref()
                .map(|e| format!(" of {}", names.get(e).map_or(e, String::as_str)))
                .unwrap_or_default(),
            api.base
        ));
        loop {
            let dropped = watch_once(
                &api,
                env.as_deref(),
                &mut last_id,
                &mut names,
                &mut announce,
            )
            .await?;
            match dropped {
                Dropped::Unauthorized => {
                    // A long watch outlives its access token: sign in again
                    // from the saved session (refreshing it).
                    let fresh = Api::connect().await?;
                    if fresh.token == api.token {
                        bail!("the platform refused the session: run `westtek login`");
                    }
                    api = fresh;
                }
                Dropped::Retry { why, received } => {
                    if received {
                        pause = Duration::from_secs(1);
                    }
                    eprintln!(
                        "{why}; reconnecting in {} s{}",
                        pause.as_secs(),
                        last_id
                            .as_deref()
                            .map(|id| format!(" (resuming after event #{id})"))
                            .unwrap_or_default()
                    );
                    announce.get_or_insert_with(|| "reconnected".into());
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(30));
                }
            }
        }
    };
    tokio::select! {
        r = run => r,
        _ = &mut ctrl_c => Ok(()),
    }
}

/// `westtek drift ask`: streams the answer, then its sources and recommendations.
async fn ask(api: &Api, environment: &str, question: &str, trace: bool) -> anyhow::Result<()> {
    ask_agent(
        api,
        "/api/agents/drift/chat",
        "the Drift Analyzer",
        environment,
        question,
        trace,
    )
    .await
}

async fn ask_agent(
    api: &Api,
    path: &str,
    agent: &str,
    environment: &str,
    question: &str,
    trace: bool,
) -> anyhow::Result<()> {
    use std::io::Write;
    let resp = api
        .req(reqwest::Method::POST, path)
        .json(&serde_json::json!({ "environment_id": environment, "message": question }))
        .send()
        .await
        .with_context(|| format!("cannot reach {}", api.base))?;
    if !resp.status().is_success() {
        return Err(problem_error(resp).await);
    }
    let mut stream = resp.bytes_stream();
    let mut parser = SseParser::default();
    let mut citations = std::collections::BTreeMap::<u64, serde_json::Value>::new();
    let mut recommendations = Vec::new();
    let mut stdout = std::io::stdout();
    let mut done = false;
    'read: while let Some(chunk) = stream.next().await {
        let chunk = chunk.context("the answer stream broke off")?;
        for ev in parser.push(&chunk)? {
            let c: serde_json::Value = serde_json::from_str(&ev.data)
                .with_context(|| format!("unreadable '{}' chunk from {agent}", ev.event))?;
            match c["type"].as_str().unwrap_or(ev.event.as_str()) {
                "text" => {
                    print!("{}", text_or(&c["text"], ""));
                    stdout.flush()?;
                }
                "citation" => {
                    let index = c["index"].as_u64().unwrap_or(citations.len() as u64 + 1);
                    citations
                        .entry(index)
                        .or_insert_with(|| c["source"].clone());
                }
                "tool_call" if trace => {
                    eprintln!("[tool] {} {}", text_or(&c["name"], "?"), c["input"])
                }
                "tool_result" if trace => eprintln!(
                    "[tool] {} → {}",
                    text_or(&c["name"], "?"),
                    text_or(&c["summary"], "")
                ),
                "recommendation" => recommendations.push(c["recommendation"].clone()),
                "done" => {
                    done = true;
                    break 'read;
                }
                "error" => {
                    println!();
                    bail!(
                        "{agent} could not answer: {} ({})",
                        text_or(&c["message"], "unknown error"),
                        text_or(&c["code"], "error")
                    );
                }
                _ => {}
            }
        }
    }
    println!();
    if !done {
        bail!("the answer stream ended before {agent} was done");
    }
    if !citations.is_empty() {
        println!("\nSources:");
        for (i, s) in &citations {
            println!(
                "[{i}] {}: {} ({})",
                text_or(&s["kind"], "?"),
                text_or(&s["title"], ""),
                text_or(&s["id"], "?")
            );
        }
    }
    let lines: Vec<String> = recommendations
        .iter()
        .filter_map(recommendation_line)
        .collect();
    if !lines.is_empty() {
        println!(
            "\nRecommendation{}:",
            if lines.len() > 1 { "s" } else { "" }
        );
        for l in lines {
            println!("- {l}");
        }
    }
    Ok(())
}

/// `westtek drift status ENV`.
async fn status_of(api: &Api, id: &str, json: bool) -> anyhow::Result<()> {
    use reqwest::Method;
    let drift = api
        .send(api.req(Method::GET, &format!("/api/environments/{id}/drift")))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&drift)?);
        return Ok(());
    }
    let env = api
        .send(api.req(Method::GET, &format!("/api/environments/{id}")))
        .await?;
    println!("environment  {} ({id})", text_or(&env["name"], "?"));
    println!("drift        {}", text_or(&drift["status"], "?"));
    let baseline = match drift["baseline_snapshot_id"].as_str() {
        Some(b) if drift["baseline_pinned"] == true => format!("snapshot {b} (pinned)"),
        Some(b) => format!("snapshot {b} (follows snapshots and restores)"),
        None => "none: no snapshot yet, so no drift is measured".into(),
    };
    println!("baseline     {baseline}");
    println!(
        "pinned       {}",
        if drift["baseline_pinned"] == true {
            "yes"
        } else {
            "no"
        }
    );
    println!(
        "watched      {}",
        if drift["watched"] == true {
            "yes"
        } else {
            "no (checked by the periodic sweep)"
        }
    );
    let last = &drift["last_event"];
    if last.is_object() {
        println!(
            "last event   #{} at {} ({}, {} → {})",
            last["seq"],
            short_time(&last["detected_at"]),
            text_or(&last["source"], "?"),
            text_or(&last["previous_status"], "?"),
            text_or(&last["status"], "?")
        );
    }
    let findings = drift["findings"].as_array().cloned().unwrap_or_default();
    println!();
    if findings.is_empty() {
        println!("no findings: the environment matches its baseline");
    } else {
        println!("findings ({}):", findings.len());
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|f| {
                vec![
                    text_or(&f["severity"], "?").to_string(),
                    kind_name(&f["kind"]),
                    text_or(&f["subject"], "?").to_string(),
                    finding_change(f),
                    notebooks_cell(&f["affected_notebooks"]),
                ]
            })
            .collect();
        print_table(
            &[
                "SEVERITY",
                "KIND",
                "SUBJECT",
                "BEFORE → AFTER",
                "AFFECTED NOTEBOOKS",
            ],
            &rows,
        );
    }
    let analysis = &drift["latest_analysis"];
    if analysis.is_object() {
        println!(
            "\nlatest analysis ({}, {}):",
            text_or(&analysis["agent"], "?"),
            short_time(&analysis["created_at"])
        );
        println!("{}", text_or(&analysis["analysis"], "(no text)").trim_end());
        if let Some(r) = recommendation_line(&analysis["recommendation"]) {
            println!("recommendation: {r}");
        }
    } else {
        println!("\nno analysis yet (the Drift Analyzer runs on CRITICAL drift; `westtek drift ask` asks it)");
    }
    Ok(())
}

/// Runs a drift command.
///
/// # Errors
/// Invalid ids or times, API errors (worded from the problem response), a
/// failed accept or rollback job, a broken answer stream.
/// `westtek transfer …`: knowledge transfer on a running platform.
#[derive(Debug, clap::Subcommand)]
pub enum TransferCommand {
    /// Download an environment's transfer package (summary, onboarding
    /// checklist, notebooks as Markdown, manifests, install and drift
    /// history, experiment logs, redaction report) as a zip.
    Export {
        /// Environment id.
        environment: String,
        /// Where to write the zip.
        #[arg(short, long)]
        output: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Ask the Knowledge Transfer agent about an environment; the answer
    /// streams, with its sources listed after it.
    Ask {
        /// Environment id.
        environment: String,
        /// The question.
        question: String,
        /// Also print the agent's tool calls (stderr).
        #[arg(long)]
        trace: bool,
    },
}

/// Runs `westtek transfer …`.
///
/// # Errors
/// Bad arguments, an unreachable platform, a problem answer, or a file that
/// cannot be written.
pub async fn run_transfer(cmd: TransferCommand) -> anyhow::Result<()> {
    match cmd {
        TransferCommand::Export {
            environment,
            output,
            force,
        } => {
            check_env_id(&environment)?;
            if output.exists() && !force {
                bail!("{} exists; pass --force to replace it", output.display());
            }
            let api = Api::connect().await?;
            let resp = api
                .req(
                    reqwest::Method::GET,
                    &format!("/api/knowledge/transfer/{environment}/package.zip"),
                )
                .send()
                .await
                .with_context(|| format!("cannot reach {}", api.base))?;
            if !resp.status().is_success() {
                return Err(problem_error(resp).await);
            }
            let bytes = resp.bytes().await.context("the download broke off")?;
            // Atomic: a temp file beside the target, then rename.
            let dir = output
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or_else(|| std::path::Path::new("."));
            let mut tmp = tempfile::NamedTempFile::new_in(dir)
                .with_context(|| format!("cannot write in {}", dir.display()))?;
            std::io::Write::write_all(&mut tmp, &bytes)
                .with_context(|| format!("cannot write {}", output.display()))?;
            tmp.as_file().sync_all()?;
            tmp.persist(&output)
                .with_context(|| format!("cannot write {}", output.display()))?;
            println!("wrote {} ({} bytes)", output.display(), bytes.len());
        }
        TransferCommand::Ask {
            environment,
            question,
            trace,
        } => {
            check_env_id(&environment)?;
            let api = Api::connect().await?;
            ask_agent(
                &api,
                "/api/agents/knowledge/chat",
                "the Knowledge Transfer agent",
                &environment,
                &question,
                trace,
            )
            .await?;
        }
    }
    Ok(())
}

pub async fn run_drift(cmd: DriftCommand) -> anyhow::Result<()> {
    use reqwest::Method;
    match &cmd {
        DriftCommand::Status {
            environment: Some(id),
            ..
        }
        | DriftCommand::Events { env: Some(id), .. }
        | DriftCommand::Watch { env: Some(id) }
        | DriftCommand::Accept { environment: id }
        | DriftCommand::Ask {
            environment: id, ..
        } => check_env_id(id)?,
        DriftCommand::Rollback {
            environment,
            snapshot,
        } => {
            check_env_id(environment)?;
            if let Some(s) = snapshot {
                check_id("snapshot", s)?;
            }
        }
        DriftCommand::Events {
            since: Some(s),
            until: Some(u),
            ..
        } if s >= u => bail!("--until must be after --since"),
        DriftCommand::Status { .. } | DriftCommand::Events { .. } | DriftCommand::Watch { .. } => {}
    }
    let api = Api::connect().await?;
    match cmd {
        DriftCommand::Status {
            environment: Some(id),
            json,
        } => status_of(&api, &id, json).await?,
        DriftCommand::Status {
            environment: None,
            json,
        } => {
            let envs = all_environments(&api).await?;
            if json {
                let rows: Vec<serde_json::Value> = envs
                    .iter()
                    .map(|e| {
                        serde_json::json!({
                            "id": e["id"], "name": e["name"], "status": e["status"],
                            "drift_status": e["drift_status"], "baseline_snapshot_id": e["baseline_snapshot_id"],
                            "last_snapshot": e["last_snapshot"],
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = envs
                .iter()
                .map(|e| {
                    let baseline = match (
                        e["baseline_snapshot_id"].as_str(),
                        e["last_snapshot"].is_string(),
                    ) {
                        (Some(_), _) => "pinned",
                        (None, true) => "latest snapshot",
                        (None, false) => "none (no snapshot)",
                    };
                    vec![
                        text_or(&e["id"], "").to_string(),
                        text_or(&e["name"], "").to_string(),
                        text_or(&e["status"], "").to_string(),
                        text_or(&e["drift_status"], "").to_string(),
                        baseline.to_string(),
                        if e["last_snapshot"].is_string() {
                            short_time(&e["last_snapshot"])
                        } else {
                            "-".into()
                        },
                    ]
                })
                .collect();
            print_table(
                &["ID", "NAME", "STATUS", "DRIFT", "BASELINE", "LAST SNAPSHOT"],
                &rows,
            );
            let drifted = envs
                .iter()
                .filter(|e| e["drift_status"] != "STABLE")
                .count();
            println!("({} environment(s), {drifted} drifted)", envs.len());
        }
        DriftCommand::Events {
            env,
            since,
            until,
            limit,
            json,
        } => {
            let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
            if let Some(e) = &env {
                query.push(("environment_id", e.clone()));
            }
            let rfc = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
            if let Some(s) = since {
                query.push(("since", rfc(s)));
            }
            if let Some(u) = until {
                query.push(("until", rfc(u)));
            }
            let page = api
                .send(api.req(Method::GET, "/api/drift/events").query(&query))
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&page["items"])?);
                return Ok(());
            }
            let names = environment_names(&api).await?;
            let items = page["items"].as_array().cloned().unwrap_or_default();
            let rows: Vec<Vec<String>> = items
                .iter()
                .map(|ev| {
                    let id = text_or(&ev["environment_id"], "?");
                    vec![
                        short_time(&ev["detected_at"]),
                        names.get(id).cloned().unwrap_or_else(|| id.to_string()),
                        text_or(&ev["status"], "?").to_string(),
                        text_or(&ev["severity"], "-").to_string(),
                        ev["findings"].as_array().map_or(0, Vec::len).to_string(),
                        notebooks_cell(&ev["affected_notebooks"]),
                    ]
                })
                .collect();
            print_table(
                &[
                    "TIME",
                    "ENVIRONMENT",
                    "STATUS",
                    "SEVERITY",
                    "FINDINGS",
                    "NOTEBOOKS",
                ],
                &rows,
            );
            println!("({} of {} event(s))", items.len(), page["total"]);
        }
        DriftCommand::Watch { env } => watch(api, env).await?,
        DriftCommand::Accept { environment } => {
            let acc = api
                .send(api.req(
                    Method::POST,
                    &format!("/api/environments/{environment}/drift/accept"),
                ))
                .await?;
            let job = finish_job(&api, &acc, "accepting the drift", true).await?;
            println!("{}", text_or(&job["message"], "complete"));
            println!(
                "accepted: snapshot {} is the new baseline",
                text_or(&acc["snapshot_id"], "?")
            );
        }
        DriftCommand::Rollback {
            environment,
            snapshot,
        } => {
            let acc = api
                .send(
                    api.req(
                        Method::POST,
                        &format!("/api/environments/{environment}/drift/rollback"),
                    )
                    .json(&serde_json::json!({ "snapshot_id": snapshot })),
                )
                .await?;
            let job = finish_job(&api, &acc, "the rollback", true).await?;
            println!("{}", text_or(&job["message"], "rolled back"));
        }
        DriftCommand::Ask {
            environment,
            question,
            trace,
        } => ask(&api, &environment, &question, trace).await?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
        let mut p = SseParser::default();
        chunks.iter().flat_map(|c| p.push(c).unwrap()).collect()
    }

    #[test]
    fn an_sse_event_split_across_chunks_and_line_endings_is_read_whole() {
        let evs = parse_all(&[
            b": keep-alive\n\nid: 7\r",
            b"\nevent: drift\rdata: {\"a\":",
            b"1}\r\n\r\n",
        ]);
        assert_eq!(
            evs,
            vec![SseEvent {
                event: "drift".into(),
                data: "{\"a\":1}".into(),
                id: Some("7".into())
            }]
        );
    }

    #[test]
    fn data_lines_are_joined_and_the_last_id_carries_over() {
        let evs = parse_all(&[b"id: 3\ndata: a\ndata:b\n\ndata\n\n:c\n\nevent: x\n\n"]);
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, "a\nb");
        assert_eq!(evs[0].event, "message");
        assert_eq!(evs[1].data, "");
        assert_eq!(evs[1].id.as_deref(), Some("3"));
    }

    #[test]
    fn an_unfinished_event_is_not_dispatched() {
        assert!(parse_all(&[b"event: drift\ndata: {}\n"]).is_empty());
    }

    #[test]
    fn finding_kinds_and_recommendations_read_as_words() {
        assert_eq!(
            kind_name(&serde_json::json!({"type": "package_added"})),
            "package_added"
        );
        assert_eq!(
            kind_name(&serde_json::json!({"type": "config_changed", "change": "modified"})),
            "config_changed (modified)"
        );
        let r = serde_json::json!({"kind": {"type": "pin", "package": "numpy", "version": "1.26.4"}, "reason": "r"});
        assert_eq!(recommendation_line(&r).unwrap(), "pin numpy==1.26.4 — r");
        assert_eq!(
            recommendation_line(&serde_json::json!({"kind": "none"})),
            None
        );
    }
}
