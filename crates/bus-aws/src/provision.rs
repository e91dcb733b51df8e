//! Creates the bus's AWS resources for dev and tests (in production the CDK
//! app creates the same; the schema is in the crate docs): the custom
//! EventBridge bus and, per consumer group, a queue with its DLQ and
//! redrive policy, a rule matching the platform's events whose target is
//! the queue, and the queue policies letting EventBridge send to them.
//!
//! Policy: idempotent (running it again updates attributes, the rule and
//! the target in place); names are derived from the bus and the group
//! (`<bus>-<group>`, `<bus>-<group>-dlq`), so a group name may hold only
//! letters, digits, `-` and `_`.

use crate::errors;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::types::{DeadLetterConfig, RuleState, Target};
use aws_sdk_sqs::types::QueueAttributeName;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;
use westtek_domain::{DomainError, Result};

/// The rule's target id.
const TARGET_ID: &str = "queue";
/// SQS's queue name limit.
const MAX_QUEUE_NAME: usize = 80;
/// EventBridge's rule name limit.
const MAX_RULE_NAME: usize = 64;

/// Settings of the resources [`provision`] creates; start from `Default`.
#[derive(Clone, Debug)]
pub struct ProvisionSettings {
    /// The `Source` each rule matches; must equal [`crate::BusConfig::source`].
    /// Default `westtek`.
    pub source: String,
    /// The queues' visibility timeout: how long a received, unacked event
    /// stays hidden before another member gets it. Default 60 s.
    pub visibility_timeout: Duration,
    /// Receives before a message moves to the DLQ. Default 5.
    pub max_receive_count: u32,
    /// How long a queue keeps an unreceived event. Default 4 days.
    pub retention: Duration,
    /// How long a DLQ keeps a message. Default 14 days (SQS's maximum).
    pub dlq_retention: Duration,
}

impl Default for ProvisionSettings {
    fn default() -> Self {
        ProvisionSettings {
            source: "westtek".into(),
            visibility_timeout: Duration::from_secs(60),
            max_receive_count: 5,
            retention: Duration::from_secs(4 * 24 * 3600),
            dlq_retention: Duration::from_secs(14 * 24 * 3600),
        }
    }
}

/// The resources of one consumer group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupResources {
    pub queue_url: String,
    pub queue_arn: String,
    pub dlq_url: String,
    pub dlq_arn: String,
    pub rule_name: String,
    pub rule_arn: String,
}

/// What [`provision`] made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provisioned {
    pub bus_name: String,
    pub bus_arn: String,
    /// By consumer group.
    pub groups: BTreeMap<String, GroupResources>,
}

impl Provisioned {
    /// Consumer group → queue URL, for [`crate::BusConfig::queues`].
    pub fn queue_map(&self) -> HashMap<String, String> {
        self.groups
            .iter()
            .map(|(g, r)| (g.clone(), r.queue_url.clone()))
            .collect()
    }
}

/// Creates (or updates) bus `bus_name` and, for each of `groups`, its
/// queue, DLQ, rule, target and queue policies.
///
/// # Errors
/// `Validation` (field `group`) for a group name that cannot be part of a
/// queue or rule name; `Upstream` code `event_bus_unavailable` with AWS's
/// code and message when a call fails.
pub async fn provision(
    sdk: &SdkConfig,
    bus_name: &str,
    groups: &[&str],
    settings: &ProvisionSettings,
) -> Result<Provisioned> {
    let events = aws_sdk_eventbridge::Client::new(sdk);
    let sqs = aws_sdk_sqs::Client::new(sdk);
    for group in groups {
        check_names(bus_name, group)?;
    }
    let bus_arn = ensure_bus(&events, bus_name).await?;
    let mut made = BTreeMap::new();
    for group in groups {
        let resources = provision_group(&events, &sqs, bus_name, &bus_arn, group, settings).await?;
        made.insert((*group).to_string(), resources);
    }
    Ok(Provisioned {
        bus_name: bus_name.to_string(),
        bus_arn,
        groups: made,
    })
}

/// The bus's name when `bus` is an ARN (`arn:…:event-bus/<name>`).
fn bus_name_of(bus: &str) -> &str {
    if bus.starts_with("arn:") {
        bus.rsplit('/').next().unwrap_or(bus)
    } else {
        bus
    }
}

fn check_names(bus: &str, group: &str) -> Result<()> {
    let bus = bus_name_of(bus);
    if group.is_empty()
        || !group
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(DomainError::invalid(
            "group",
            format!("`{group}` cannot name a queue: use letters, digits, `-` and `_`"),
        ));
    }
    let dlq = format!("{bus}-{group}-dlq");
    let rule = format!("{bus}-{group}");
    if dlq.len() > MAX_QUEUE_NAME || rule.len() > MAX_RULE_NAME {
        return Err(DomainError::invalid(
            "group",
            format!(
                "`{group}` on bus `{bus}` makes names too long for SQS ({MAX_QUEUE_NAME}) or EventBridge rules ({MAX_RULE_NAME}): `{dlq}`, `{rule}`"
            ),
        ));
    }
    Ok(())
}

/// Creates bus `bus` unless it exists; its ARN.
pub(crate) async fn ensure_bus(events: &aws_sdk_eventbridge::Client, bus: &str) -> Result<String> {
    let name = bus_name_of(bus);
    if name == "default" {
        return describe_bus(events, name).await;
    }
    match events.create_event_bus().name(name).send().await {
        Ok(out) => match out.event_bus_arn() {
            Some(arn) => Ok(arn.to_string()),
            None => describe_bus(events, name).await,
        },
        Err(e) if errors::code(&e).as_deref() == Some("ResourceAlreadyExistsException") => {
            describe_bus(events, name).await
        }
        Err(e) => Err(errors::events("CreateEventBus", name, &e)),
    }
}

async fn describe_bus(events: &aws_sdk_eventbridge::Client, name: &str) -> Result<String> {
    let out = events
        .describe_event_bus()
        .name(name)
        .send()
        .await
        .map_err(|e| errors::events("DescribeEventBus", name, &e))?;
    out.arn().map(str::to_string).ok_or_else(|| {
        errors::unavailable(format!(
            "EventBridge DescribeEventBus of {name} gave no ARN"
        ))
    })
}

/// Creates (or updates) one group's queue, DLQ, rule, target and policies.
pub(crate) async fn provision_group(
    events: &aws_sdk_eventbridge::Client,
    sqs: &aws_sdk_sqs::Client,
    bus: &str,
    bus_arn: &str,
    group: &str,
    settings: &ProvisionSettings,
) -> Result<GroupResources> {
    check_names(bus, group)?;
    let bus = bus_name_of(bus);
    let rule_name = format!("{bus}-{group}");
    let (dlq_url, dlq_arn) = ensure_queue(sqs, &format!("{bus}-{group}-dlq")).await?;
    let (queue_url, queue_arn) = ensure_queue(sqs, &format!("{bus}-{group}")).await?;

    let pattern = serde_json::json!({ "source": [settings.source] }).to_string();
    let rule = events
        .put_rule()
        .name(&rule_name)
        .event_bus_name(bus)
        .event_pattern(pattern)
        .state(RuleState::Enabled)
        .description(format!(
            "westtek events to the consumer group {group}'s queue"
        ))
        .send()
        .await
        .map_err(|e| errors::events("PutRule", bus, &e))?;
    let rule_arn = rule.rule_arn().map(str::to_string).unwrap_or_else(|| {
        // ARN of a rule on a custom bus: …:rule/<bus>/<rule>.
        format!(
            "{}:rule/{bus}/{rule_name}",
            bus_arn.split(":event-bus/").next().unwrap_or(bus_arn)
        )
    });

    let secs = |d: Duration| d.as_secs().to_string();
    set_attributes(
        sqs,
        &dlq_url,
        vec![
            (
                QueueAttributeName::MessageRetentionPeriod,
                secs(settings.dlq_retention),
            ),
            (QueueAttributeName::SqsManagedSseEnabled, "true".into()),
            (QueueAttributeName::Policy, send_policy(&dlq_arn, &rule_arn)),
        ],
    )
    .await?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dlq_arn,
        "maxReceiveCount": settings.max_receive_count,
    })
    .to_string();
    set_attributes(
        sqs,
        &queue_url,
        vec![
            (
                QueueAttributeName::VisibilityTimeout,
                secs(settings.visibility_timeout),
            ),
            (
                QueueAttributeName::MessageRetentionPeriod,
                secs(settings.retention),
            ),
            (QueueAttributeName::MaximumMessageSize, "262144".into()),
            (QueueAttributeName::SqsManagedSseEnabled, "true".into()),
            (QueueAttributeName::RedrivePolicy, redrive),
            (
                QueueAttributeName::Policy,
                send_policy(&queue_arn, &rule_arn),
            ),
        ],
    )
    .await?;

    let target = Target::builder()
        .id(TARGET_ID)
        .arn(&queue_arn)
        .dead_letter_config(DeadLetterConfig::builder().arn(&dlq_arn).build())
        .build()
        .map_err(DomainError::internal)?;
    let out = events
        .put_targets()
        .rule(&rule_name)
        .event_bus_name(bus)
        .targets(target)
        .send()
        .await
        .map_err(|e| errors::events("PutTargets", bus, &e))?;
    if out.failed_entry_count() > 0 {
        let why: Vec<String> = out
            .failed_entries()
            .iter()
            .map(|f| {
                format!(
                    "{}: {}",
                    f.error_code().unwrap_or("error"),
                    f.error_message().unwrap_or("no message")
                )
            })
            .collect();
        return Err(errors::unavailable(format!(
            "EventBridge PutTargets of rule {rule_name} on bus {bus} failed: {}",
            why.join("; ")
        )));
    }
    Ok(GroupResources {
        queue_url,
        queue_arn,
        dlq_url,
        dlq_arn,
        rule_name,
        rule_arn,
    })
}

/// Lets EventBridge send to the queue `queue_arn` for rule `rule_arn` only.
fn send_policy(queue_arn: &str, rule_arn: &str) -> String {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "EventBridgeSendMessage",
            "Effect": "Allow",
            "Principal": { "Service": "events.amazonaws.com" },
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": { "ArnEquals": { "aws:SourceArn": rule_arn } }
        }]
    })
    .to_string()
}

/// Creates queue `name` unless it exists; its URL and ARN. Attributes are
/// set afterwards, so a second run updates them instead of failing on a
/// difference.
async fn ensure_queue(sqs: &aws_sdk_sqs::Client, name: &str) -> Result<(String, String)> {
    let out = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .map_err(|e| errors::sqs("CreateQueue", name, &e))?;
    let url = out
        .queue_url()
        .ok_or_else(|| errors::unavailable(format!("SQS CreateQueue of {name} gave no URL")))?
        .to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(|e| errors::sqs("GetQueueAttributes", &url, &e))?;
    let arn = attrs
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn))
        .cloned()
        .ok_or_else(|| errors::unavailable(format!("SQS gave no QueueArn for {url}")))?;
    Ok((url, arn))
}

async fn set_attributes(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    attributes: Vec<(QueueAttributeName, String)>,
) -> Result<()> {
    let mut request = sqs.set_queue_attributes().queue_url(url);
    for (name, value) in attributes {
        request = request.attributes(name, value);
    }
    request
        .send()
        .await
        .map(|_| ())
        .map_err(|e| errors::sqs("SetQueueAttributes", url, &e))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_group_name_that_cannot_name_a_queue_is_refused() {
        for bad in ["", "has space", "dot.ted", "slash/ed"] {
            assert!(
                matches!(check_names("westtek", bad), Err(DomainError::Validation { field, .. }) if field == "group"),
                "{bad:?} was accepted"
            );
        }
        let long = "g".repeat(60);
        assert!(check_names("westtek", &long).is_err());
        check_names("westtek", "env-manager_2").unwrap();
    }

    #[test]
    fn a_bus_arn_names_its_bus() {
        assert_eq!(
            bus_name_of("arn:aws:events:eu-west-1:111122223333:event-bus/westtek"),
            "westtek"
        );
        assert_eq!(bus_name_of("westtek"), "westtek");
    }
}
