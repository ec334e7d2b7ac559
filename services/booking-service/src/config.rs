//! The booking service's configuration, read once from the environment at start-up.

use std::net::SocketAddr;

use myevents_runtime::config::{
    BrokerConfig, ConfigError, CorsOrigins, RelayConfig, ServerConfig, StoreConfig, listen_addr_or,
    parse_or, seconds_or, var,
};
use myevents_runtime::idempotency::IdempotencyConfig;

/// Everything the booking service reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingServiceConfig {
    /// HTTP listen address (`LISTEN_URL`, default `0.0.0.0:8282`; `:8282` accepted; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Origins allowed by CORS (`CORS_ALLOWED_ORIGINS`, default `*`).
    pub cors: CorsOrigins,
    /// Limits, metrics port (`METRICS_LISTEN_URL`, default `0.0.0.0:9101`) and shutdown.
    pub server: ServerConfig,
    /// The broker (`BROKER_KIND`, default `rabbitmq`, and its variables).
    pub broker: BrokerConfig,
    /// The store (`STORE_KIND`, default `mongodb`; database `MONGO_DATABASE`, default
    /// `myevents_booking`).
    pub store: StoreConfig,
    /// The outbox relay (`OUTBOX_RELAY`, `OUTBOX_POLL_INTERVAL`).
    pub relay: RelayConfig,
    /// The subscription (AMQP queue / consumer group) this service consumes (`BOOKING_QUEUE`, default
    /// `booking`, the reference's queue).
    pub queue: String,
    /// Most seats one booking may take (`MAX_SEATS_PER_BOOKING`, default 10).
    pub max_seats_per_booking: u32,
    /// Seats on sale for an `eventCreated` message that states no capacity, as a reference event
    /// service sends (`DEFAULT_EVENT_CAPACITY`, seats; unset: such events are known but sold out).
    pub default_capacity: Option<u32>,
    /// How long idempotency keys are kept and held (`IDEMPOTENCY_KEY_TTL`, `IDEMPOTENCY_LEASE`).
    pub idempotency: IdempotencyConfig,
    /// How often the booking service looks for cancellations whose seat return a crash interrupted and
    /// finishes them (`SEAT_RETURN_SWEEP_INTERVAL`, seconds, default 60).
    pub seat_return_sweep: std::time::Duration,
}

impl BookingServiceConfig {
    /// Reads and validates the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        let max_seats_per_booking = parse_or("MAX_SEATS_PER_BOOKING", 10u32)?;
        if max_seats_per_booking == 0 {
            return Err(ConfigError::new(
                "MAX_SEATS_PER_BOOKING",
                "0",
                "must be at least 1",
            ));
        }
        let default_capacity = match var("DEFAULT_EVENT_CAPACITY") {
            None => None,
            Some(_) => Some(parse_or("DEFAULT_EVENT_CAPACITY", 0u32)?),
        };
        Ok(Self {
            listen: listen_addr_or("LISTEN_URL", "0.0.0.0:8282")?,
            cors: CorsOrigins::from_env(CorsOrigins::Any)?,
            server: ServerConfig::from_env("0.0.0.0:9101")?,
            broker: BrokerConfig::from_env("rabbitmq")?,
            store: StoreConfig::from_env("mongodb", "myevents_booking")?,
            relay: RelayConfig::from_env()?,
            queue: var("BOOKING_QUEUE").unwrap_or_else(|| "booking".to_owned()),
            max_seats_per_booking,
            default_capacity,
            idempotency: IdempotencyConfig::from_env()?,
            seat_return_sweep: seconds_or(
                "SEAT_RETURN_SWEEP_INTERVAL",
                std::time::Duration::from_secs(60),
            )?,
        })
    }
}
