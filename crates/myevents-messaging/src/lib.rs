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

use myevents_broker::{Cause, HandlingError};
use myevents_store::RepositoryError;

/// A store failure as a message handler's error: [`HandlingError::Unavailable`] when the store
/// cannot be reached now (down, its circuit open, its start-up work not done), so the message waits
/// for it and is never dead-lettered for it; [`HandlingError::Transient`] otherwise (retried, then
/// dead-lettered).
pub fn store_failure(error: RepositoryError) -> HandlingError {
    match error {
        RepositoryError::Unavailable(_) => HandlingError::Unavailable(Cause::new(error)),
        RepositoryError::Conflict(_)
        | RepositoryError::Gone(_)
        | RepositoryError::Unexpected(_) => HandlingError::Transient(Cause::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_store_makes_a_message_wait_and_other_failures_retry() {
        let unavailable = RepositoryError::Unavailable(Cause::msg("circuit open"));
        assert!(matches!(
            store_failure(unavailable),
            HandlingError::Unavailable(cause) if cause.to_string().contains("circuit open")
        ));
        for error in [
            RepositoryError::Conflict(Cause::msg("duplicate key")),
            RepositoryError::Unexpected(Cause::msg("bad document")),
        ] {
            assert!(matches!(store_failure(error), HandlingError::Transient(_)));
        }
    }
}
