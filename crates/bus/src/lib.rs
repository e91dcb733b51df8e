//! Event bus adapters: implementations of the domain's `EventBus` port.
//!
//! - [`InProcessBus`]: one process (`westtek up`); bounded drop-oldest
//!   queues per group, no redelivery.
//! - [`RedisStreamsBus`]: services as separate processes; one Redis stream,
//!   consumer groups, at-least-once with acks, pending re-delivery and
//!   claiming from dead consumers.
//!
//! Both give each consumer group every event published after the group's
//! first subscription, and hand each event to one member of the group. The
//! shared contract is tested by one set of generic test bodies run against
//! each adapter (`tests/it/conformance.rs`).

mod in_process;
mod redis_streams;
#[cfg(feature = "testing")]
pub mod testing;

pub use in_process::{InProcessBus, DEFAULT_QUEUE_CAPACITY};
pub use redis_streams::{RedisBusConfig, RedisStreamsBus, DEFAULT_MAX_LEN};

#[cfg(test)]
#[path = "../tests/it/conformance.rs"]
mod conformance;
