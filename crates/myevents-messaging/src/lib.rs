//! # myevents-messaging
//!
//! What a service does with its broker, above the broker port (`myevents-broker`):
//!
//! - [`broker`]: the one factory that turns a `myevents_broker::config::BrokerConfig` into a
//!   publisher and a subscriber (memory, RabbitMQ with feature `rabbitmq`, Kafka with feature
//!   `kafka`, which builds librdkafka).
//! - [`outbox`]: the relay that publishes a store's pending outbox messages, and the waker the
//!   service's writes notify.
//! - [`Messaging`]: a service's consumer, outbox relay and publisher, started and stopped together.
//! - [`dead_letters`]: replaying dead letters after a fix.
//! - [`config`]: the relay's settings (`OUTBOX_RELAY`, `OUTBOX_POLL_INTERVAL`).
//! - [`metrics`]: the relay's and the consumer's series, by `service`.
//!
//! ```no_run
//! use myevents_broker::config::BrokerConfig;
//!
//! # fn demo() -> anyhow::Result<()> {
//! let broker = myevents_messaging::broker::build(&BrokerConfig::from_env("memory")?, &[])?;
//! # Ok(())
//! # }
//! ```

pub mod broker;
pub mod config;
pub mod dead_letters;
mod lifecycle;
pub mod metrics;
pub mod outbox;

pub use lifecycle::{Messaging, MessagingParts};
