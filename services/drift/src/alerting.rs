//! The alert router's ports over the drift store: each lab's webhooks, the
//! platform's SMTP settings, and dead letters (stored and audited).

use async_trait::async_trait;
use std::sync::Arc;
use westtek_alerts::{
    DeadLetter, DeadLetterSink, Error as AlertError, SmtpConfig, TargetSource, WebhookTarget,
};
use westtek_domain::ports::MetadataStore;
use westtek_domain::{DeadLetterRecord, DriftStore, LabId, WebhookFormat};
use westtek_env_manager::system_audit;
use westtek_inventory::Severity;

/// Webhooks from the drift store; e-mail from the platform's configuration.
pub struct StoreTargets {
    pub store: Arc<dyn DriftStore>,
    pub smtp: Option<SmtpConfig>,
}

/// `CRITICAL`, `MINOR`, `INFO` → severity (unknown: `CRITICAL`, the safe side).
pub fn parse_severity(s: &str) -> Option<Severity> {
    match s.to_ascii_uppercase().as_str() {
        "CRITICAL" => Some(Severity::Critical),
        "MINOR" => Some(Severity::Minor),
        "INFO" => Some(Severity::Info),
        _ => None,
    }
}

#[async_trait]
impl TargetSource for StoreTargets {
    async fn webhooks_for(&self, lab: LabId) -> westtek_alerts::Result<Vec<WebhookTarget>> {
        let hooks = self
            .store
            .list_webhooks(lab)
            .await
            .map_err(|e| AlertError::backend("listing the lab's webhooks", e))?;
        Ok(hooks
            .into_iter()
            .map(|h| WebhookTarget {
                id: h.id.to_string(),
                url: h.url,
                secret: h.secret.into(),
                format: match h.format {
                    WebhookFormat::Generic => westtek_alerts::WebhookFormat::Generic,
                    WebhookFormat::Slack => westtek_alerts::WebhookFormat::Slack,
                },
                min_severity: parse_severity(&h.min_severity).unwrap_or(Severity::Critical),
            })
            .collect())
    }

    async fn smtp_for(&self, _lab: LabId) -> westtek_alerts::Result<Option<SmtpConfig>> {
        Ok(self.smtp.clone())
    }
}

/// Dead letters into the drift store, each audited on its lab's trail.
pub struct StoreDeadLetters {
    pub store: Arc<dyn DriftStore>,
    pub audit: Arc<dyn MetadataStore>,
}

#[async_trait]
impl DeadLetterSink for StoreDeadLetters {
    async fn record(&self, letter: DeadLetter) -> westtek_alerts::Result<()> {
        let channel = match letter.channel {
            westtek_alerts::Channel::Webhook => "webhook",
            westtek_alerts::Channel::Email => "email",
            westtek_alerts::Channel::Sms => "sms",
            westtek_alerts::Channel::Router => "router",
        };
        let rec = DeadLetterRecord {
            id: uuid::Uuid::now_v7(),
            lab_id: letter.lab_id,
            channel: channel.into(),
            target: letter.target_id.clone(),
            event_id: letter.event_id.to_string(),
            attempts: letter.attempts,
            last_error: letter.last_error.clone(),
            last_status: letter.last_status,
            payload: letter.payload,
            at: letter.at,
        };
        let audit = system_audit(
            Some(letter.lab_id),
            "alert.dead_lettered",
            channel,
            letter.target_id,
            serde_json::json!({ "event_id": rec.event_id, "attempts": rec.attempts, "last_error": rec.last_error, "last_status": rec.last_status }),
        );
        self.store
            .insert_dead_letter(rec)
            .await
            .map_err(|e| AlertError::backend("storing a dead letter", e))?;
        self.audit
            .append(vec![audit])
            .await
            .map_err(|e| AlertError::backend("auditing a dead letter", e))?;
        Ok(())
    }
}
