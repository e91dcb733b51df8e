//! The event bus (the domain's `EventBus` port) on Amazon EventBridge, with
//! one SQS queue per consuming service: [`EventBridgeBus`].
//!
//! # How events flow
//!
//! `publish` sends the event to a custom EventBridge bus with `PutEvents`
//! (`Source` = [`BusConfig::source`], default `westtek`; `DetailType` = the
//! event's type; `Detail` = the event's JSON envelope, exactly as the other
//! buses carry it). On the bus, one rule per consumer group matches every
//! platform event (`{"source": ["westtek"]}`) and targets that group's SQS
//! queue, which receives EventBridge's full envelope with the event in
//! `detail`. A subscriber of the group long-polls the queue
//! (`ReceiveMessage`); `Delivery::ack` deletes the message; a message not
//! acked comes back after the visibility timeout, and after
//! [`ProvisionSettings::max_receive_count`] receives it moves to the
//! group's dead-letter queue (DLQ). So each group gets every event at least
//! once and, within a visibility timeout, only one member of the group
//! holds it. Consumers are idempotent, as with the other buses.
//!
//! # Policy
//!
//! - **Publishing.** Concurrent `publish` calls are coalesced into
//!   `PutEvents` calls of at most 10 entries and at most 256 KiB together;
//!   `publish` returns once EventBridge accepted its entry. An entry
//!   EventBridge reports failed (`FailedEntryCount` > 0) for a transient
//!   reason (throttling, internal failure) is sent again, alone with the
//!   other failed ones, with exponential backoff ([`BusConfig::publish_attempts`]);
//!   a permanent failure (malformed detail, access denied) fails that
//!   publish at once with EventBridge's code and message. A call that fails
//!   as a whole is retried by the SDK (standard retry mode) and then fails
//!   with `Upstream` code `event_bus_unavailable`.
//! - **Size.** An event whose entry exceeds [`MAX_EVENT_BYTES`] (EventBridge's
//!   256 KiB entry limit less 1 KiB for the envelope the SQS message carries
//!   around `detail`) is refused before any call to AWS with a `Validation`
//!   error on field `event`: put large data in a store and publish a
//!   reference to it.
//! - **Groups to queues.** Each consumer group's queue URL is configuration
//!   ([`BusConfig::queues`], e.g. from `WESTTEK_BUS_QUEUES`, parsed by
//!   [`parse_queue_map`]): the CDK app creates the queues with generated
//!   names and hands their URLs to the services, which then need no
//!   `sqs:GetQueueUrl` permission and no start-up round trip, and a group
//!   nobody configured fails `subscribe` at once with a `Validation` error
//!   on field `group` naming the configured groups. For dev and tests only,
//!   [`EventBridgeBus::with_auto_provision`] creates a missing group's
//!   resources on its first `subscribe` instead (the in-process bus's
//!   semantics: a group sees the events published after it first
//!   subscribed). A configured group's queue exists from deployment, so it
//!   also holds the events published before its first subscriber started.
//! - **Receiving.** Each subscription has its own task that long-polls
//!   ([`BusConfig::wait_time`], default 20 s; an arriving message ends the
//!   wait at once) for up to [`BusConfig::max_messages`] messages, at most
//!   one batch ahead of its consumer: the messages of a batch wait in the
//!   subscription until they are handed out, so keep a batch's handling
//!   under the visibility timeout (or lower `max_messages`). The task, not
//!   the stream, owns the receive in flight, so a consumer that stops
//!   polling for a while (a timeout around `next()`) loses nothing. When
//!   the subscription is dropped, the task finishes its receive and
//!   releases what it got but had not handed out (visibility set to 0) for
//!   the group's other members; a delivery handed out and dropped without
//!   `ack` (or one waiting in the one-slot hand-over at that moment) comes
//!   back after the visibility timeout. The stream never ends on its own;
//!   failed receives are retried with backoff (100 ms doubling to 30 s) and
//!   logged. The long poll's length does not delay a delivery (a message
//!   arriving ends it), so the 20 s default, the cheapest in requests,
//!   meets the conformance suite's timing (deliveries within 10 s, silence
//!   checked over 300 ms).
//! - **Malformed messages** (not an EventBridge envelope whose `detail` is
//!   a platform event) are logged at `warn` and left unacked, so the redrive
//!   policy moves them to the DLQ, where they can be inspected.
//! - **Order** is not guaranteed across events (SQS standard queues; moto
//!   happens to keep it). The platform's consumers re-read current state
//!   when an event arrives (drift re-checks the environment, knowledge
//!   syncs it), so they do not depend on order.
//!
//! # AWS resources (what the CDK app creates; [`provision`] creates the same
//! for dev and tests)
//!
//! | resource | settings |
//! |---|---|
//! | EventBridge bus `<bus>` | custom bus; its name (or ARN) is `WESTTEK_EVENT_BUS` |
//! | per group `<g>`: SQS queue (`<bus>-<g>`) | visibility timeout 60 s, retention 4 days, max message 256 KiB, SSE-SQS; redrive policy → the DLQ, `maxReceiveCount` 5 |
//! | per group: SQS DLQ (`<bus>-<g>-dlq`) | retention 14 days, SSE-SQS |
//! | per group: rule `<bus>-<g>` on the bus | pattern `{"source": ["westtek"]}`; target = the queue (target id `queue`), with the DLQ as the target's dead-letter queue (events EventBridge could not deliver) |
//! | queue policies (queue and DLQ) | allow `events.amazonaws.com` `sqs:SendMessage` on the queue, condition `aws:SourceArn` = the rule's ARN |
//!
//! Permissions of the services: publishers `events:PutEvents` on the bus;
//! a consumer of group `g`: `sqs:ReceiveMessage`, `sqs:DeleteMessage`,
//! `sqs:ChangeMessageVisibility` and `sqs:GetQueueAttributes` (checked at
//! `subscribe`) on `g`'s queue (and `kms:Decrypt` if the queues use a
//! customer managed KMS key). In AWS a new rule may take a
//! moment before it routes events; moto routes at once.

mod bus;
mod errors;
mod provision;

pub use bus::{parse_queue_map, BusConfig, EventBridgeBus, MAX_BATCH_ENTRIES, MAX_EVENT_BYTES};
pub use provision::{provision, GroupResources, ProvisionSettings, Provisioned};
pub use westtek_aws::shared_config;
