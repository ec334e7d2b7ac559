//! The outbox relay: publishes the messages a service's store keeps pending, oldest first, each with
//! its own id, and marks each published only after the broker confirmed it. A crash between the two
//! publishes the message again with the same id, which consumers recognise; nothing is lost.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use myevents_broker::{EventPublisher, Message};
use myevents_domain::messages::OutboxMessage;
use myevents_store::{Outbox, RepositoryError};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Messages read from the outbox per round.
const BATCH: usize = 100;

/// The broker message for an outbox message: same id, name, key and time (whole seconds).
pub fn to_message(message: &OutboxMessage) -> Message {
    let seconds = message.occurred_at.timestamp();
    Message {
        id: message.id.clone(),
        name: message.event.name().to_owned(),
        key: message.event.key(),
        timestamp: DateTime::from_timestamp(seconds, 0).unwrap_or(message.occurred_at),
        payload: message.event.to_json(),
        headers: message
            .trace_parent
            .iter()
            .map(|t| {
                (
                    myevents_broker::trace::TRACEPARENT_HEADER.to_owned(),
                    t.clone(),
                )
            })
            .collect(),
    }
}

#[derive(Debug, thiserror::Error)]
enum RelayError {
    #[error(transparent)]
    Store(#[from] RepositoryError),
    #[error(transparent)]
    Broker(#[from] myevents_broker::BrokerError),
}

/// Publishes one batch; returns how many messages it published.
async fn relay_batch(
    outbox: &dyn Outbox,
    publisher: &dyn EventPublisher,
) -> Result<usize, RelayError> {
    let pending = outbox.pending(BATCH).await?;
    record_backlog(&pending);
    for message in &pending {
        publisher.publish(&to_message(message)).await?;
        outbox.mark_published(&message.id).await?;
        crate::metrics::PUBLISHED
            .with_label_values(&[message.event.name()])
            .inc();
        tracing::debug!(message_id = %message.id, event_name = message.event.name(), "relayed");
    }
    Ok(pending.len())
}

/// Sets the outbox gauges from a look at the pending messages (oldest first).
fn record_backlog(pending: &[OutboxMessage]) {
    crate::metrics::OUTBOX_PENDING.set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
    let age = pending.first().map_or(0, |oldest| {
        (chrono::Utc::now() - oldest.occurred_at)
            .num_seconds()
            .max(0)
    });
    crate::metrics::OUTBOX_OLDEST_AGE.set(age);
}

/// A running relay.
pub struct OutboxRelay {
    wake: Arc<Notify>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl OutboxRelay {
    /// Starts relaying from `outbox` to `publisher`: at once after [`OutboxRelay::waker`] is notified
    /// (after a write), else every `poll` (messages a crashed process left behind); after a failure it
    /// waits 0.5 s, doubling up to 10 s.
    pub fn start(
        outbox: Arc<dyn Outbox>,
        publisher: Arc<dyn EventPublisher>,
        poll: Duration,
    ) -> Self {
        let wake = Arc::new(Notify::new());
        let stop = CancellationToken::new();
        let task = tokio::spawn(run(
            outbox,
            publisher,
            poll,
            Arc::clone(&wake),
            stop.clone(),
        ));
        Self { wake, stop, task }
    }

    /// Notify it after storing a message, so it is published at once.
    pub fn waker(&self) -> Arc<Notify> {
        Arc::clone(&self.wake)
    }

    /// Stops after a last round that publishes what is pending (bounded by `deadline`).
    pub async fn shutdown(self, deadline: Duration) {
        self.stop.cancel();
        self.wake.notify_one();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("the outbox relay did not finish in time; pending messages stay stored");
        }
    }
}

async fn run(
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    poll: Duration,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut failure_delay = Duration::from_millis(500);
    loop {
        let stopping = stop.is_cancelled();
        match relay_batch(outbox.as_ref(), publisher.as_ref()).await {
            Ok(count) => {
                failure_delay = Duration::from_millis(500);
                if count == BATCH {
                    continue;
                }
                if stopping {
                    break;
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                    () = stop.cancelled() => {}
                }
            }
            Err(error) => {
                crate::metrics::PUBLISH_FAILURES.inc();
                tracing::warn!(%error, retry_in_ms = u64::try_from(failure_delay.as_millis()).unwrap_or(u64::MAX),
                    "outbox relay failed; the messages stay pending");
                if stopping {
                    break;
                }
                tokio::select! {
                    () = tokio::time::sleep(failure_delay) => {}
                    () = stop.cancelled() => {}
                }
                failure_delay = (failure_delay * 2).min(Duration::from_secs(10));
            }
        }
    }
}
