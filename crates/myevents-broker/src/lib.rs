//! # myevents-broker
//!
//! The message broker port of MyEvents — [`EventPublisher`] and [`EventSubscriber`] — and its adapters.
//! Messages are [`Message`]s: a wire name (the event name, e.g. `eventCreated`), a partition key, a
//! unique id, a time, a JSON payload and string headers. No broker client type crosses the port.
//!
//! Delivery is at least once: a subscriber acknowledges a message only after its [`MessageHandler`]
//! returned `Ok`; a handler error of kind [`HandlingError::Transient`] is retried with backoff, and a
//! message that is poison ([`HandlingError::Poison`]) or keeps failing is moved to the subscription's
//! dead-letter queue (`<subscription>.dlq`) with the reason in the `x-dead-letter-reason` header.
//! A handler whose dependency is down ([`HandlingError::Unavailable`]) holds its message until the
//! dependency answers again: an outage of the store parks nothing in the dead-letter queue.
//! Nothing is dropped silently.
//!
//! Adapters:
//! - [`memory::InMemoryBroker`]: in-process queues, for the embedded mode and unit tests.
//! - `rabbitmq::RabbitMqBroker` (feature `rabbitmq`): RabbitMQ through `lapin`, with a durable topic
//!   exchange, persistent messages and publisher confirms.
//!
//! Feature `conformance` exposes the suite every adapter must pass.
//!
//! ```no_run
//! use std::sync::Arc;
//! use myevents_broker::{EventPublisher, Message, memory::InMemoryBroker};
//!
//! # async fn demo() -> Result<(), myevents_broker::BrokerError> {
//! let broker = InMemoryBroker::default();
//! let publisher: Arc<dyn EventPublisher> = Arc::new(broker.clone());
//! publisher
//!     .publish(&Message::new("eventCreated", "6b026ab2686c822a56b0fe36", b"{}".to_vec()))
//!     .await?;
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
mod consume;
pub mod memory;
pub mod metrics;
#[cfg(feature = "rabbitmq")]
pub mod rabbitmq;

pub use consume::{Consumer, ConsumerStatus, STABLE_RUN};

/// Building blocks for adapters in other crates: the retrying handler run, its outcome, dead-letter
/// marking and the signals of a consume loop (see [`Consumer::spawn`]).
pub mod adapter {
    pub use crate::consume::{ConsumerSignals, Outcome, mark_dead_letter, process};
}

/// Header naming the event (the reference's AMQP header; we send it with every message).
pub const EVENT_NAME_HEADER: &str = "x-event-name";
/// Header with the reason a message was dead-lettered.
pub const DEAD_LETTER_REASON_HEADER: &str = "x-dead-letter-reason";
/// Header with the subscription a dead-lettered message came from.
pub const DEAD_LETTER_SOURCE_HEADER: &str = "x-dead-letter-source";
/// Header naming the one subscription a replayed dead letter is for: a replay goes through the
/// exchange (or topic) again, and every other subscription bound to its event name acknowledges it
/// without handling it (`myevents_messaging::dead_letters`).
pub const REPLAY_TARGET_HEADER: &str = "x-replay-target";

/// One message on the broker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Unique message id (a UUID v7 in text form when we create it); consumers deduplicate by it.
    pub id: String,
    /// The event name (`eventCreated`, …): the AMQP routing key and `x-event-name` header.
    pub name: String,
    /// Partition key: the id of the entity the message is about. Messages with one key keep their order.
    pub key: String,
    /// When the message was created, UTC (whole seconds survive every adapter).
    pub timestamp: DateTime<Utc>,
    /// The body: compact JSON (`content-type: application/json`).
    pub payload: Vec<u8>,
    /// Extra headers (correlation id, `traceparent`, dead-letter reason), names in lower case.
    pub headers: BTreeMap<String, String>,
}

impl Message {
    /// A new message with a fresh id and the current time (truncated to whole seconds).
    pub fn new(name: impl Into<String>, key: impl Into<String>, payload: Vec<u8>) -> Self {
        let now = Utc::now();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.into(),
            key: key.into(),
            timestamp: DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now),
            payload,
            headers: BTreeMap::new(),
        }
    }

    /// Adds a header (builder style).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }
}

pub use myevents_platform::error::Cause;

/// What can go wrong talking to a broker. Each variant keeps its [`Cause`] (the client's error) and
/// tells it in its own text, once: the variants have no `source`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    /// The broker cannot be reached now (connection refused or lost, time-out); retrying later may work.
    #[error("broker unavailable: {0}")]
    Unavailable(Cause),
    /// The broker refused the message (negative publisher confirm).
    #[error("broker refused the message: {0}")]
    Refused(Cause),
    /// The broker's definitions contradict the settings (a queue declared with another type):
    /// retrying cannot help, an operator must act (the text says how).
    #[error("the broker's definitions contradict the settings: {0}")]
    Misconfigured(Cause),
    /// Anything else.
    #[error("unexpected broker error: {0}")]
    Unexpected(Cause),
}

/// Publishes messages.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes one message durably: returns only after the broker confirmed it (publisher confirm,
    /// delivery report). Retries a lost connection within the adapter's publish time-out.
    ///
    /// # Errors
    /// [`BrokerError::Unavailable`] when the broker could not be reached within the time-out,
    /// [`BrokerError::Refused`] when it refused the message.
    async fn publish(&self, message: &Message) -> Result<(), BrokerError>;

    /// Publishes `messages` in their order, durably, with many confirms in flight where the adapter
    /// can (RabbitMQ: all on one confirm-mode channel; Kafka: all queued in the producer), and
    /// returns one result per message, in the same order. The broker keeps their order as far as it
    /// promises it (one channel, one partition). Unlike [`EventPublisher::publish`] it does not
    /// retry: what failed is for the caller to publish again.
    ///
    /// The default publishes one after the other and stops at the first failure: the messages after
    /// it get the same error, unpublished.
    async fn publish_batch(&self, messages: &[Message]) -> Vec<Result<(), BrokerError>> {
        let mut results = Vec::with_capacity(messages.len());
        for message in messages {
            let result = match results.last() {
                Some(Err(error)) => Err(Clone::clone(error)),
                _ => self.publish(message).await,
            };
            results.push(result);
        }
        results
    }

    /// Flushes anything buffered and closes connections (at shutdown). Publishing afterwards reconnects.
    ///
    /// # Errors
    /// [`BrokerError`] when buffered messages could not be flushed.
    async fn close(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}

/// A durable subscription: a named queue (AMQP queue, Kafka consumer group) receiving the listed event
/// names. Consumers of one subscription share its messages; messages published after the subscription
/// was first declared are kept for it while no consumer runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Queue / group name, e.g. `booking`.
    pub name: String,
    /// Event names delivered to it, e.g. `["eventCreated"]`.
    pub event_names: Vec<String>,
    /// Whether failed messages go to `<name>.dlq`. Off only for a dead-letter queue's own subscription.
    pub dead_letter: bool,
}

impl Subscription {
    /// A subscription `name` to `event_names`, with a dead-letter queue.
    pub fn new(name: impl Into<String>, event_names: &[&str]) -> Self {
        Self {
            name: name.into(),
            event_names: event_names.iter().map(|&n| n.to_owned()).collect(),
            dead_letter: true,
        }
    }

    /// The name of this subscription's dead-letter queue.
    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.name)
    }

    /// A subscription that reads this one's dead-letter queue (to inspect or replay dead letters).
    pub fn dead_letters(&self) -> Self {
        Self {
            name: self.dead_letter_queue(),
            event_names: Vec::new(),
            dead_letter: false,
        }
    }
}

/// Why a handler could not handle a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlingError {
    /// The message can never be handled (undecodable, breaks the contract): dead-letter it at once.
    #[error("poison message: {0}")]
    Poison(Cause),
    /// Handling failed for a reason that may pass (a write conflict, an unexpected answer): retry
    /// with backoff ([`RetryPolicy`]), then dead-letter.
    #[error("transient failure: {0}")]
    Transient(Cause),
    /// A dependency the handler needs does not answer (the store is down, its circuit open, or not
    /// started yet): the message is not at fault, so it is never dead-lettered for this. It is
    /// retried with the policy's backoff (up to [`RetryPolicy::max_delay`] between attempts) for as
    /// long as it takes, without counting against [`RetryPolicy::attempts`]; it stays
    /// unacknowledged in hand meanwhile, so the consumer takes no more messages until the
    /// dependency is back, and a shutdown leaves it for the broker to deliver again.
    #[error("dependency unavailable: {0}")]
    Unavailable(Cause),
}

/// Handles delivered messages. Must be idempotent: a message may be delivered more than once.
#[async_trait]
pub trait MessageHandler: Send + Sync {
    /// Handles one message; `Ok` acknowledges it.
    ///
    /// # Errors
    /// [`HandlingError`] says whether to retry or dead-letter the message.
    async fn handle(&self, message: &Message) -> Result<(), HandlingError>;
}

/// How often and how patiently a transient handler failure is retried before the message is
/// dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// Delay before the first retry; doubles on each retry.
    pub first_delay: Duration,
    /// Longest delay between two attempts.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 6 attempts, 200 ms doubling to at most 5 s (about 11 s of retrying in all).
    fn default() -> Self {
        Self {
            attempts: 6,
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

/// Receives messages.
#[async_trait]
pub trait EventSubscriber: Send + Sync {
    /// Creates the subscription's queues and bindings (idempotent). From then on messages for it are
    /// kept even while no consumer runs.
    ///
    /// # Errors
    /// [`BrokerError::Unavailable`] when the broker cannot be reached; `Unexpected` when the broker
    /// refuses the declaration (e.g. a queue exists with other arguments).
    async fn declare(&self, subscription: &Subscription) -> Result<(), BrokerError>;

    /// Starts a consumer of `subscription` that passes each message to `handler`, in order. The
    /// consumer runs in the background, reconnects by itself, and stops through [`Consumer::shutdown`].
    ///
    /// # Errors
    /// [`BrokerError`] when the subscription cannot be started (the adapter declares it first).
    async fn subscribe(
        &self,
        subscription: &Subscription,
        handler: Arc<dyn MessageHandler>,
    ) -> Result<Consumer, BrokerError>;
}
