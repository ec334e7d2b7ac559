//! Replaying dead letters after a fix: `event-service dead-letters replay` and
//! `booking-service dead-letters replay` (see docs/messages.md, "Replaying dead letters"; the command line is `myevents_host::cli`).
//!
//! [`replay`] reads a subscription's dead-letter destination (RabbitMQ queue `<queue>.dlq`, Kafka
//! topic `<topic>.dlq` filtered by `x-dead-letter-source`) and publishes each message again through the
//! service's publisher with its original id, name, key, time and headers, the dead-letter headers
//! removed, acknowledging the dead letter only after the broker confirmed the new publish. The copy
//! carries `x-replay-target: <subscription>`, and [`only_for_its_target`] — which every service's
//! consumer goes through — makes every other subscription bound to that event name acknowledge it
//! without handling it: the replay reaches the subscription that dead-lettered the message, only.
//!
//! It stops when the destination stays empty for `idle`, or when a message it replayed in this run
//! comes back (still failing): that one is left in the dead-letter destination.
//!
//! ```no_run
//! # async fn demo(broker: myevents_messaging::broker::Broker) -> anyhow::Result<()> {
//! use myevents_broker::Subscription;
//! let report = myevents_messaging::dead_letters::replay(
//!     &broker,
//!     &Subscription::new("booking", &["eventCreated"]),
//!     std::time::Duration::from_secs(5),
//! )
//! .await?;
//! println!("replayed {}", report.replayed);
//! # Ok(())
//! # }
//! ```

use myevents_broker::Cause;
use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use myevents_broker::{
    DEAD_LETTER_REASON_HEADER, DEAD_LETTER_SOURCE_HEADER, EventPublisher, HandlingError, Message,
    MessageHandler, REPLAY_TARGET_HEADER, Subscription,
};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::broker::Broker;

/// What one replay did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReplayReport {
    /// Dead letters published again (and removed from the dead-letter destination).
    pub replayed: usize,
    /// Ids of messages that failed again during this run and were left in the dead-letter destination.
    pub failed_again: Vec<String>,
}

struct Republisher {
    publisher: Arc<dyn EventPublisher>,
    /// The subscription the replayed messages are for.
    target: String,
    seen: Mutex<HashSet<String>>,
    report: Mutex<ReplayReport>,
    progress: Notify,
    came_back: Notify,
}

#[async_trait]
impl MessageHandler for Republisher {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        let again = !self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(message.id.clone());
        if again {
            // Replayed in this run and dead-lettered again: leave it there and end the run.
            self.report
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .failed_again
                .push(message.id.clone());
            self.came_back.notify_one();
            std::future::pending::<()>().await;
        }
        let mut original = message.clone();
        original.headers.remove(DEAD_LETTER_REASON_HEADER);
        original.headers.remove(DEAD_LETTER_SOURCE_HEADER);
        original
            .headers
            .insert(REPLAY_TARGET_HEADER.to_owned(), self.target.clone());
        self.publisher
            .publish(&original)
            .await
            .map_err(|e| HandlingError::Transient(Cause::new(e)))?;
        tracing::info!(message_id = %message.id, event_name = %message.name, "dead letter replayed");
        self.report
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replayed += 1;
        self.progress.notify_one();
        Ok(())
    }
}

/// `handler`, for subscription `name`: a replayed dead letter meant for another subscription (its
/// `x-replay-target` header names another) is acknowledged without being handled.
pub fn only_for_its_target(
    name: &str,
    handler: Arc<dyn MessageHandler>,
) -> Arc<dyn MessageHandler> {
    Arc::new(ForTarget {
        name: name.to_owned(),
        inner: handler,
    })
}

struct ForTarget {
    name: String,
    inner: Arc<dyn MessageHandler>,
}

#[async_trait]
impl MessageHandler for ForTarget {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        match message.headers.get(REPLAY_TARGET_HEADER) {
            Some(target) if *target != self.name => {
                tracing::debug!(message_id = %message.id, %target,
                    "a dead letter replayed for another subscription; acknowledged");
                Ok(())
            }
            _ => self.inner.handle(message).await,
        }
    }
}

/// Replays the dead letters of `subscription` through `broker` (see the module docs); returns once
/// nothing arrived for `idle` after the reader attached, or a replayed message came back.
///
/// # Errors
/// When the dead-letter destination cannot be read (the broker is unreachable for 60 s).
pub async fn replay(
    broker: &Broker,
    subscription: &Subscription,
    idle: Duration,
) -> anyhow::Result<ReplayReport> {
    let republisher = Arc::new(Republisher {
        publisher: Arc::clone(&broker.publisher),
        target: subscription.name.clone(),
        seen: Mutex::default(),
        report: Mutex::default(),
        progress: Notify::new(),
        came_back: Notify::new(),
    });
    broker.subscriber.declare(subscription).await?;
    let consumer = broker
        .subscriber
        .subscribe(
            &subscription.dead_letters(),
            Arc::clone(&republisher) as Arc<dyn MessageHandler>,
        )
        .await?;
    let status = consumer.status();
    let attach_deadline = Instant::now() + Duration::from_secs(60);
    while !status.is_attached() {
        if Instant::now() >= attach_deadline {
            consumer.kill().await;
            anyhow::bail!("could not attach to the dead-letter destination within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let came_back = loop {
        tokio::select! {
            () = republisher.progress.notified() => {}
            () = republisher.came_back.notified() => break true,
            () = tokio::time::sleep(idle) => break false,
        }
    };
    if came_back {
        // The handler holds the returned message unacknowledged; stopping at once gives it back.
        consumer.kill().await;
    } else {
        consumer.shutdown().await;
    }
    broker.publisher.close().await?;
    let report = republisher
        .report
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dead_letters_are_replayed_once_to_their_subscription_only_and_one_failing_again_is_left_behind()
     {
        use myevents_broker::HandlingError;
        use myevents_broker::memory::InMemoryBroker;

        /// Counts what it handles.
        #[derive(Default)]
        struct Counting(std::sync::atomic::AtomicUsize);
        #[async_trait]
        impl MessageHandler for Counting {
            async fn handle(&self, _message: &Message) -> Result<(), HandlingError> {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }
        }

        /// Fails every message until fixed; afterwards still fails `still_broken`.
        struct Handler {
            fixed: std::sync::atomic::AtomicBool,
            still_broken: String,
            handled: Mutex<Vec<String>>,
            failures: std::sync::atomic::AtomicUsize,
        }
        #[async_trait]
        impl MessageHandler for Handler {
            async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
                if !self.fixed.load(std::sync::atomic::Ordering::SeqCst)
                    || message.id == self.still_broken
                {
                    self.failures
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    return Err(HandlingError::Poison(Cause::msg("broken")));
                }
                self.handled.lock().expect("lock").push(message.id.clone());
                Ok(())
            }
        }

        let memory = InMemoryBroker::default();
        let broker = Broker::in_memory(&memory);
        let subscription = Subscription::new("booking", &["eventCreated"]);
        let messages: Vec<Message> = (0..3)
            .map(|i| Message::new("eventCreated", format!("k{i}"), b"{}".to_vec()))
            .collect();
        let handler = Arc::new(Handler {
            fixed: false.into(),
            still_broken: messages[2].id.clone(),
            handled: Mutex::default(),
            failures: 0.into(),
        });
        broker
            .subscriber
            .declare(&subscription)
            .await
            .expect("declare");
        let consumer = broker
            .subscriber
            .subscribe(
                &subscription,
                only_for_its_target(
                    &subscription.name,
                    Arc::clone(&handler) as Arc<dyn MessageHandler>,
                ),
            )
            .await
            .expect("subscribe");
        // Another subscription bound to the same event name, as a service's consumer runs it.
        let audit = Subscription::new("audit", &["eventCreated"]);
        let audited = Arc::new(Counting::default());
        broker.subscriber.declare(&audit).await.expect("declare");
        let auditor = broker
            .subscriber
            .subscribe(
                &audit,
                only_for_its_target(&audit.name, Arc::clone(&audited) as Arc<dyn MessageHandler>),
            )
            .await
            .expect("subscribe");
        for message in &messages {
            broker.publisher.publish(message).await.expect("publish");
        }
        // All three end up dead-lettered (poison: no retries), then the consumer is idle.
        let deadline = Instant::now() + Duration::from_secs(5);
        while handler.failures.load(std::sync::atomic::Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "three failures");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }

        handler
            .fixed
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let report = replay(&broker, &subscription, Duration::from_secs(2))
            .await
            .expect("replay");
        assert_eq!(report.replayed, 3, "{report:?}");
        assert_eq!(report.failed_again, vec![messages[2].id.clone()]);
        let handled = handler.handled.lock().expect("lock").clone();
        assert_eq!(
            handled,
            vec![messages[0].id.clone(), messages[1].id.clone()]
        );

        // What failed again is still there; the rest is gone.
        let again = replay(&broker, &subscription, Duration::from_millis(500))
            .await
            .expect("replay");
        assert_eq!(again.replayed, 1);
        assert_eq!(again.failed_again, vec![messages[2].id.clone()]);
        consumer.shutdown().await;
        // The other subscription handled each original once, and none of the four replayed copies.
        auditor.shutdown().await;
        assert_eq!(audited.0.load(std::sync::atomic::Ordering::SeqCst), 3);
    }
}
