//! The event service's configuration, read once from the environment at start-up.

use std::net::SocketAddr;

use myevents_runtime::config::{
    BrokerConfig, ConfigError, CorsOrigins, RelayConfig, ServerConfig, StoreConfig, listen_addr_or,
    var,
};
use myevents_runtime::idempotency::IdempotencyConfig;

/// Everything the event service reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventServiceConfig {
    /// HTTP listen address (`LISTEN_URL`, default `0.0.0.0:8181`; `:8181` accepted; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Origins allowed by CORS (`CORS_ALLOWED_ORIGINS`, default `*`).
    pub cors: CorsOrigins,
    /// Limits, metrics port (`METRICS_LISTEN_URL`, default `0.0.0.0:9100`) and shutdown.
    pub server: ServerConfig,
    /// The broker (`BROKER_KIND`, default `rabbitmq`, and its variables).
    pub broker: BrokerConfig,
    /// The store (`STORE_KIND`, default `mongodb`; database `MONGO_DATABASE`, default `myevents`).
    pub store: StoreConfig,
    /// The outbox relay (`OUTBOX_RELAY`, `OUTBOX_POLL_INTERVAL`).
    pub relay: RelayConfig,
    /// The subscription (AMQP queue / Kafka consumer group) for `eventBooked` (`EVENTS_QUEUE`,
    /// default `events-service`).
    pub queue: String,
    /// How long idempotency keys are kept and held (`IDEMPOTENCY_KEY_TTL`, `IDEMPOTENCY_LEASE`).
    pub idempotency: IdempotencyConfig,
}

impl EventServiceConfig {
    /// Reads and validates the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            listen: listen_addr_or("LISTEN_URL", "0.0.0.0:8181")?,
            cors: CorsOrigins::from_env(CorsOrigins::Any)?,
            server: ServerConfig::from_env("0.0.0.0:9100")?,
            broker: BrokerConfig::from_env("rabbitmq")?,
            store: StoreConfig::from_env("mongodb", "myevents")?,
            relay: RelayConfig::from_env()?,
            queue: var("EVENTS_QUEUE").unwrap_or_else(|| "events-service".to_owned()),
            idempotency: IdempotencyConfig::from_env()?,
        })
    }
}
