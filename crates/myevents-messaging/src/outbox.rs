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

/// Wakes the outbox relay after a write, so that what was stored is published at once rather than
/// at the next poll. Cloning shares it; a waker no relay listens to does nothing.
#[derive(Debug, Clone, Default)]
pub struct OutboxWaker(Arc<Notify>);

impl OutboxWaker {
    /// Tells the relay that a message was stored.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// What a relay works with: whose outbox (the `service` label of its metrics), where it publishes.
struct Relay {
    service: &'static str,
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    poll: Duration,
    waker: OutboxWaker,
}

impl Relay {
    /// Publishes one batch; returns how many messages it published.
    async fn batch(&self) -> Result<usize, RelayError> {
        let pending = self.outbox.pending(BATCH).await?;
        self.record_backlog(&pending);
        for message in &pending {
            self.publisher.publish(&to_message(message)).await?;
            self.outbox.mark_published(&message.id).await?;
            crate::metrics::PUBLISHED
                .with_label_values(&[self.service, message.event.name()])
                .inc();
            tracing::debug!(message_id = %message.id, event_name = message.event.name(), "relayed");
        }
        Ok(pending.len())
    }

    /// Sets the outbox gauges from a look at the pending messages (oldest first).
    fn record_backlog(&self, pending: &[OutboxMessage]) {
        crate::metrics::OUTBOX_PENDING
            .with_label_values(&[self.service])
            .set(i64::try_from(pending.len()).unwrap_or(i64::MAX));
        let age = pending.first().map_or(0, |oldest| {
            (chrono::Utc::now() - oldest.occurred_at)
                .num_seconds()
                .max(0)
        });
        crate::metrics::OUTBOX_OLDEST_AGE
            .with_label_values(&[self.service])
            .set(age);
    }

    async fn run(self, stop: CancellationToken) {
        let mut failure_delay = Duration::from_millis(500);
        loop {
            let stopping = stop.is_cancelled();
            match self.batch().await {
                Ok(count) => {
                    failure_delay = Duration::from_millis(500);
                    if count == BATCH {
                        continue;
                    }
                    if stopping {
                        break;
                    }
                    tokio::select! {
                        () = self.waker.0.notified() => {}
                        () = tokio::time::sleep(self.poll) => {}
                        () = stop.cancelled() => {}
                    }
                }
                Err(error) => {
                    crate::metrics::PUBLISH_FAILURES
                        .with_label_values(&[self.service])
                        .inc();
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
}

/// A running relay.
pub struct OutboxRelay {
    waker: OutboxWaker,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl OutboxRelay {
    /// Starts relaying `service`'s `outbox` to `publisher`: at once after `waker` is woken (after a
    /// write), else every `poll` (messages a crashed process left behind); after a failure it waits
    /// 0.5 s, doubling up to 10 s.
    pub fn start(
        service: &'static str,
        outbox: Arc<dyn Outbox>,
        publisher: Arc<dyn EventPublisher>,
        poll: Duration,
        waker: OutboxWaker,
    ) -> Self {
        let stop = CancellationToken::new();
        let relay = Relay {
            service,
            outbox,
            publisher,
            poll,
            waker: waker.clone(),
        };
        let task = tokio::spawn(relay.run(stop.clone()));
        Self { waker, stop, task }
    }

    /// Stops after a last round that publishes what is pending (bounded by `deadline`).
    pub async fn shutdown(self, deadline: Duration) {
        self.stop.cancel();
        self.waker.wake();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("the outbox relay did not finish in time; pending messages stay stored");
        }
    }
}
