//! Shared fixtures: moto's record of what was sent and a router over fixed
//! channels; alerts, fast retry policies, the in-memory dead-letter sink and
//! the MIME reader are the alerts crate's own test fixtures.

use std::sync::Arc;
use std::time::Duration;

pub use crate::alerts_support::{alert, closed_port, fast_policy, MemorySink, SOON};
pub use crate::smtpd::Mail;
use async_trait::async_trait;
use serde_json::Value;
use westtek_alerts::{
    http_client, AlertRouter, Result, RoutedChannel, RouterConfig, SmtpConfig, TargetSource,
    WebhookTarget, WithChannels,
};
use westtek_aws::testing::Moto;
use westtek_domain::LabId;

/// A moto server of this test's own (started off the async threads).
pub async fn moto() -> Moto {
    tokio::task::spawn_blocking(Moto::start).await.unwrap()
}

/// A lab with neither webhooks nor SMTP.
pub struct NoTargets;

#[async_trait]
impl TargetSource for NoTargets {
    async fn webhooks_for(&self, _lab: LabId) -> Result<Vec<WebhookTarget>> {
        Ok(Vec::new())
    }

    async fn smtp_for(&self, _lab: LabId) -> Result<Option<SmtpConfig>> {
        Ok(None)
    }
}

/// A router whose only targets are `channels`, retrying `attempts` times.
pub fn router(
    channels: Vec<Arc<dyn RoutedChannel>>,
    sink: Arc<MemorySink>,
    attempts: u32,
) -> AlertRouter {
    AlertRouter::start(
        RouterConfig {
            retry: fast_policy(attempts, Duration::from_secs(10)),
            ..RouterConfig::default()
        },
        http_client().unwrap(),
        Arc::new(WithChannels::new(Arc::new(NoTargets), channels)),
        sink,
    )
    .unwrap()
}

/// Moto's state: every model instance of every service, by service and
/// class name.
pub async fn moto_state(moto: &Moto) -> Value {
    let url = format!("{}/moto-api/data.json", moto.endpoint());
    let resp = reqwest::get(&url).await.unwrap();
    assert!(resp.status().is_success(), "{url}: {}", resp.status());
    resp.json().await.unwrap()
}

/// The instances of `service`'s model `class` moto holds (empty when none).
pub async fn recorded(moto: &Moto, service: &str, class: &str) -> Vec<Value> {
    moto_state(moto).await[service][class]
        .as_array()
        .cloned()
        .unwrap_or_default()
}
