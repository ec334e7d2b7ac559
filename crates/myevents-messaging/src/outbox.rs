//! The outbox relay: publishes the messages a service's store keeps pending, oldest first, each with
//! its own id, in batches whose confirms are all in flight together, and marks each batch published
//! (in one write) only after the broker confirmed it. A crash between the two publishes the messages
//! again with the same ids, which consumers recognise; nothing is lost.
//!
//! Every replica of a service runs a relay; the one holding the outbox's claim
//! ([`myevents_store::Outbox::claim`]) publishes, renewing it as it goes, and the others stand by and
//! take over when it stops (it releases the claim) or its lease lapses (it died). One publisher at a
//! time keeps stored order and never publishes one message twice at once.
//!
//! The backlog gauges ([`watch_backlog`]) count every pending message, whichever replica publishes.

use std::sync::Arc;
use std::time::Duration;

use chrono::DateTime;
use myevents_broker::{EventPublisher, Message};
use myevents_domain::messages::OutboxMessage;
use myevents_store::{Outbox, RepositoryError};

use crate::config::RelayConfig;
use crate::metrics::MessagingMetrics;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Messages read from the outbox, published with their confirms in flight together, and marked
/// published in one write, per round.
const BATCH: usize = 500;

/// Time between two looks at the whole backlog for the gauges.
const BACKLOG_INTERVAL: Duration = Duration::from_secs(5);

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
                    myevents_platform::trace::TRACEPARENT_HEADER.to_owned(),
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
    metrics: MessagingMetrics,
    /// This relay's claimant id: unique per running relay.
    id: String,
    outbox: Arc<dyn Outbox>,
    publisher: Arc<dyn EventPublisher>,
    config: RelayConfig,
    waker: OutboxWaker,
    /// When the claim was last granted (taken before asking), while this relay holds it.
    claimed_at: Option<Instant>,
}

/// What one round did.
enum Round {
    /// Held the claim and published this many messages.
    Published(usize),
    /// Another relay holds the claim.
    StandingBy,
}

impl Relay {
    /// Whether the claim is held with at least two thirds of its lease left; else it is renewed
    /// before the next batch.
    fn claim_is_fresh(&self) -> bool {
        self.claimed_at
            .is_some_and(|at| at.elapsed() < self.config.claim_lease / 3)
    }

    /// Claims (or renews) the outbox when due, then publishes one batch.
    async fn round(&mut self) -> Result<Round, RelayError> {
        if !self.claim_is_fresh() {
            let asked = Instant::now();
            let held = self.claimed_at.is_some();
            if self.outbox.claim(&self.id, self.config.claim_lease).await? {
                if !held {
                    tracing::info!(relay = %self.id, "holding the outbox claim: this relay publishes");
                }
                self.claimed_at = Some(asked);
            } else {
                if held {
                    tracing::warn!(relay = %self.id, "lost the outbox claim to another relay");
                }
                self.claimed_at = None;
                return Ok(Round::StandingBy);
            }
        }
        self.batch().await.map(Round::Published)
    }

    /// Publishes one batch; returns how many messages it published. Marks published what the broker
    /// confirmed even when some of the batch failed; the rest stays pending.
    async fn batch(&self) -> Result<usize, RelayError> {
        let pending = self.outbox.pending(BATCH).await?;
        if pending.is_empty() {
            return Ok(0);
        }
        let messages: Vec<Message> = pending.iter().map(to_message).collect();
        let results = self.publisher.publish_batch(&messages).await;
        let mut published = Vec::with_capacity(pending.len());
        let mut failure = None;
        for (message, result) in pending.iter().zip(results) {
            match result {
                Ok(()) => {
                    self.metrics
                        .published
                        .with_label_values(&[self.metrics.service, message.event.name()])
                        .inc();
                    published.push(message.id.clone());
                }
                Err(error) => {
                    failure.get_or_insert(error);
                }
            }
        }
        self.outbox.mark_published(&published).await?;
        tracing::debug!(
            published = published.len(),
            batch = pending.len(),
            "relayed"
        );
        match failure {
            Some(error) => Err(error.into()),
            None => Ok(published.len()),
        }
    }

    async fn run(mut self, stop: CancellationToken) {
        let mut failure_delay = Duration::from_millis(500);
        loop {
            let stopping = stop.is_cancelled();
            let outcome = self.round().await;
            let woken = matches!(outcome, Ok(Round::Published(_)));
            let wait = match outcome {
                Ok(Round::Published(count)) => {
                    failure_delay = Duration::from_millis(500);
                    if count == BATCH {
                        continue;
                    }
                    self.config.poll_interval
                }
                Ok(Round::StandingBy) => self.config.poll_interval,
                Err(error) => {
                    self.metrics
                        .publish_failures
                        .with_label_values(&[self.metrics.service])
                        .inc();
                    tracing::warn!(%error, retry_in_ms = u64::try_from(failure_delay.as_millis()).unwrap_or(u64::MAX),
                        "outbox relay failed; the messages stay pending");
                    let wait = failure_delay;
                    failure_delay = (failure_delay * 2).min(Duration::from_secs(10));
                    wait
                }
            };
            if stopping {
                break;
            }
            tokio::select! {
                () = self.waker.0.notified(), if woken => {}
                () = tokio::time::sleep(wait) => {}
                () = stop.cancelled() => {}
            }
        }
        if self.claimed_at.is_some()
            && let Err(error) = self.outbox.release(&self.id).await
        {
            tracing::warn!(%error, "could not release the outbox claim; it lapses by itself");
        }
    }
}

/// Keeps the backlog gauges of `metrics`' service up to date from a look at the whole `outbox` every 5
/// seconds: `myevents_outbox_pending` (messages), `myevents_outbox_oldest_pending_age_seconds` and
/// `myevents_outbox_backlog_readable`. While the store cannot be read the last count stays, the age
/// goes on growing from the last known oldest message (nothing can be marked published meanwhile),
/// and `readable` is 0. Runs until the handle is aborted.
pub fn watch_backlog(outbox: Arc<dyn Outbox>, metrics: &MessagingMetrics) -> JoinHandle<()> {
    let service = metrics.service;
    let pending = metrics.outbox_pending.with_label_values(&[service]);
    let age = metrics.outbox_oldest_age.with_label_values(&[service]);
    let readable = metrics
        .outbox_backlog_readable
        .with_label_values(&[service]);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(BACKLOG_INTERVAL);
        let mut oldest = None;
        loop {
            ticks.tick().await;
            match outbox.backlog().await {
                Ok(backlog) => {
                    pending.set(i64::try_from(backlog.pending).unwrap_or(i64::MAX));
                    oldest = backlog.oldest;
                    readable.set(1);
                }
                Err(error) => {
                    tracing::debug!(%error, "the outbox backlog cannot be read");
                    readable.set(0);
                }
            }
            let seconds = oldest.map_or(0, |oldest| (chrono::Utc::now() - oldest).num_seconds());
            age.set(seconds.max(0));
        }
    })
}

/// A running relay.
pub struct OutboxRelay {
    waker: OutboxWaker,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl OutboxRelay {
    /// Starts relaying a service's `outbox` to `publisher` while it holds the outbox's claim: at
    /// once after `waker` is woken (after a write), else every `config.poll_interval` (messages a
    /// crashed process left behind; a standing-by relay asks for the claim as often); after a failure
    /// it waits 0.5 s, doubling up to 10 s. It counts in `metrics` (whose service it relays for).
    pub fn start(
        outbox: Arc<dyn Outbox>,
        publisher: Arc<dyn EventPublisher>,
        config: RelayConfig,
        waker: OutboxWaker,
        metrics: MessagingMetrics,
    ) -> Self {
        let stop = CancellationToken::new();
        let relay = Relay {
            id: relay_id(metrics.service),
            metrics,
            outbox,
            publisher,
            config,
            waker: waker.clone(),
            claimed_at: None,
        };
        let task = tokio::spawn(relay.run(stop.clone()));
        Self { waker, stop, task }
    }

    /// Stops after a last round that publishes what is pending (bounded by `deadline`), and releases
    /// the claim so that a standing-by relay takes over at once.
    pub async fn shutdown(self, deadline: Duration) {
        self.stop.cancel();
        self.waker.wake();
        if tokio::time::timeout(deadline, self.task).await.is_err() {
            tracing::warn!("the outbox relay did not finish in time; pending messages stay stored");
        }
    }
}

/// A claimant id unique to one running relay, that tells an operator reading `outbox_claims` where
/// it runs: `<service>/<host>/<pid>/<ObjectId>` (`HOSTNAME` is the pod's name on Kubernetes).
fn relay_id(service: &str) -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "unknown-host".to_owned());
    format!(
        "{service}/{host}/{}/{}",
        std::process::id(),
        myevents_domain::id::ObjectId::generate()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use async_trait::async_trait;
    use myevents_broker::BrokerError;
    use myevents_domain::id::{EventId, LocationId};
    use myevents_domain::location::Location;
    use myevents_domain::messages::{DomainEvent, EventBooked};
    use myevents_store::LocationRepository;
    use myevents_store::memory::{InMemoryLocationRepository, InMemoryOutbox};

    use super::*;

    /// Records what it was given, and whether two batches were ever published at once.
    #[derive(Default)]
    struct Recording {
        published: Mutex<Vec<String>>,
        in_flight: AtomicUsize,
        overlapped: AtomicBool,
    }

    #[async_trait]
    impl EventPublisher for Recording {
        async fn publish(&self, message: &Message) -> Result<(), BrokerError> {
            self.publish_batch(std::slice::from_ref(message))
                .await
                .remove(0)
        }

        async fn publish_batch(&self, messages: &[Message]) -> Vec<Result<(), BrokerError>> {
            if self.in_flight.fetch_add(1, Ordering::SeqCst) > 0 {
                self.overlapped.store(true, Ordering::SeqCst);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
            self.published
                .lock()
                .expect("lock")
                .extend(messages.iter().map(|m| m.id.clone()));
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            vec![Ok(()); messages.len()]
        }
    }

    fn config(lease: Duration) -> RelayConfig {
        RelayConfig {
            enabled: true,
            poll_interval: Duration::from_millis(20),
            claim_lease: lease,
        }
    }

    /// Stores `count` messages (one location each) and returns their ids in stored order.
    async fn store(outbox: &InMemoryOutbox, count: usize) -> Vec<String> {
        let locations = InMemoryLocationRepository::new(outbox.clone());
        let mut ids = Vec::with_capacity(count);
        for i in 0..count {
            let message = OutboxMessage::new(DomainEvent::EventBooked(EventBooked {
                event_id: EventId::generate(),
                user_id: format!("user {i}"),
                booking_id: None,
                seats: Some(1),
                booked_at: None,
            }));
            let location = Location {
                id: LocationId::generate(),
                name: format!("hall {i}"),
                address: String::new(),
                country: String::new(),
                open_time: 0,
                close_time: 0,
                halls: Vec::new(),
                organiser: None,
                revision: 0,
            };
            locations.insert(&location, &message).await.expect("insert");
            ids.push(message.id);
        }
        ids
    }

    async fn published_all(recording: &Recording, count: usize) -> bool {
        for _ in 0..500 {
            if recording.published.lock().expect("lock").len() >= count {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        false
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_relays_on_one_outbox_publish_each_message_once_in_stored_order() {
        let outbox = InMemoryOutbox::default();
        let recording = Arc::new(Recording::default());
        let relays: Vec<OutboxRelay> = (0..3)
            .map(|_| {
                OutboxRelay::start(
                    Arc::new(outbox.clone()),
                    Arc::clone(&recording) as Arc<dyn EventPublisher>,
                    config(Duration::from_secs(10)),
                    OutboxWaker::default(),
                    MessagingMetrics::registered("booking-service"),
                )
            })
            .collect();
        let stored = store(&outbox, 2 * BATCH + 7).await;
        assert!(published_all(&recording, stored.len()).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(*recording.published.lock().expect("lock"), stored);
        assert!(!recording.overlapped.load(Ordering::SeqCst));
        assert_eq!(outbox.backlog().await.expect("backlog").pending, 0);
        for relay in relays {
            relay.shutdown(Duration::from_secs(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_standing_by_relay_takes_over_at_once_after_a_shutdown_and_after_a_lapsed_lease() {
        let outbox = InMemoryOutbox::default();
        let recording = Arc::new(Recording::default());
        let start = |lease| {
            OutboxRelay::start(
                Arc::new(outbox.clone()),
                Arc::clone(&recording) as Arc<dyn EventPublisher>,
                config(lease),
                OutboxWaker::default(),
                MessagingMetrics::registered("booking-service"),
            )
        };
        let first = start(Duration::from_secs(3600));
        let mut stored = store(&outbox, 3).await;
        assert!(published_all(&recording, 3).await);
        let second = start(Duration::from_secs(1));
        // The first relay still holds the claim: the second stands by.
        first.shutdown(Duration::from_secs(5)).await;
        stored.extend(store(&outbox, 3).await);
        assert!(
            published_all(&recording, 6).await,
            "the standing-by relay took over after the shutdown, long before the hour-long lease ended"
        );
        // A relay that dies holds its claim until its lease lapses; then another takes over.
        second.task.abort();
        let third = start(Duration::from_secs(1));
        stored.extend(store(&outbox, 3).await);
        assert!(published_all(&recording, 9).await);
        assert_eq!(*recording.published.lock().expect("lock"), stored);
        third.shutdown(Duration::from_secs(5)).await;
    }
}
