//! Shared plumbing of event streams: consuming the bus for the life of a
//! service, and answering with a stream of tagged JSON values as
//! server-sent events.

use crate::AppState;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::{BoxStream, Stream, StreamExt};
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use westtek_domain::DomainEvent;

/// Consumes the bus as consumer group `group` for as long as the task runs:
/// every delivery goes to `handle`, then is acknowledged (at-least-once:
/// handlers must be idempotent). A failed or ended subscription (Redis
/// restarted) is re-established with backoff (1 s doubling to 60 s).
pub async fn consume_bus<F, Fut>(state: AppState, group: &'static str, mut handle: F)
where
    F: FnMut(DomainEvent) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut stream = match state.bus.subscribe(group).await {
            Ok(s) => {
                backoff = Duration::from_secs(1);
                s
            }
            Err(e) => {
                tracing::warn!(error = %e, group, retry_in = ?backoff, "cannot subscribe to the event bus");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
        };
        while let Some(d) = stream.next().await {
            handle(d.event).await;
            if let Err(e) = d.ack.ack().await {
                tracing::warn!(error = %e, group, "could not acknowledge an event");
            }
        }
        tracing::warn!(group, "the event bus subscription ended; subscribing again");
        tokio::time::sleep(backoff).await;
    }
}

/// Server-sent events of serialisable values tagged with a `type` field:
/// each value is one event named by its `type` (`chunk` when it has none)
/// with the value as JSON data; keep-alive comments in between.
pub fn tagged_sse<T, S>(items: S) -> Response
where
    T: serde::Serialize,
    S: Stream<Item = T> + Send + 'static,
{
    let s: BoxStream<'static, Result<Event, Infallible>> = items
        .map(|c| {
            let value = serde_json::to_value(&c).unwrap_or_default();
            let name = value
                .get("type")
                .and_then(|t| t.as_str())
                .unwrap_or("chunk")
                .to_string();
            Ok(Event::default().event(name).data(value.to_string()))
        })
        .boxed();
    Sse::new(s).keep_alive(KeepAlive::default()).into_response()
}
