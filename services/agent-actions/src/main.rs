//! The action-group Lambda: reads its settings once, then forwards each
//! event Bedrock sends to the service that owns the agent's tools (see
//! `westtek_agent_actions::remote`).

use clap::Parser;
use lambda_runtime::{service_fn, LambdaEvent};
use secrecy::SecretString;
use serde_json::Value;
use std::time::Duration;
use westtek_agent_actions::{Forwarder, Targets};

/// Settings, from the Lambda's environment.
#[derive(Parser, Debug)]
#[command(
    name = "agent-actions",
    version,
    about = "Bedrock action groups of the West Tek agents"
)]
struct Config {
    /// Base URL of the drift service's internal listener (Drift Analyzer actions).
    #[arg(long, env = "WESTTEK_AGENT_ACTIONS_DRIFT_URL")]
    drift_url: Option<String>,
    /// Base URL of the knowledge service's internal listener (Knowledge Transfer actions).
    #[arg(long, env = "WESTTEK_AGENT_ACTIONS_KNOWLEDGE_URL")]
    knowledge_url: Option<String>,
    /// Shared secret the services check (from Secrets Manager).
    #[arg(long, env = "WESTTEK_AGENT_ACTIONS_TOKEN", hide_env_values = true)]
    token: SecretString,
    /// Seconds to wait for a service (keep under the Lambda's timeout).
    #[arg(long, env = "WESTTEK_AGENT_ACTIONS_TIMEOUT_SECS", default_value_t = 25)]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() {
    if let Err(e) = run().await {
        // Display, not Debug: the message names the setting to fix.
        eprintln!("agent-actions: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), lambda_runtime::Error> {
    // JSON lines, no ANSI: what CloudWatch Logs reads best.
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(false)
        .without_time()
        .init();
    let config = Config::try_parse()?;
    let forwarder = Forwarder::new(
        Targets {
            drift: config.drift_url,
            knowledge: config.knowledge_url,
        },
        config.token,
        Duration::from_secs(config.timeout_secs),
    )?;
    let forwarder = &forwarder;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        // A malformed event is a function error: the runtime reports its
        // message (the sentence, not the enum) to Lambda and the logs.
        forwarder.handle(&event.payload).await.map_err(|e| {
            tracing::warn!(error = %e, "not an action-group event");
            lambda_runtime::Error::from(e.to_string())
        })
    }))
    .await
}
