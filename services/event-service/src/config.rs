//! The event service's configuration, read once from the environment at start-up.

use myevents_host::{HostConfig, HostDefaults};
use myevents_platform::config::ConfigError;

/// The event service's defaults: listens on `0.0.0.0:8181`, metrics on `0.0.0.0:9100`, consumes
/// queue (or group) `EVENTS_QUEUE` (default `events-service`), database `myevents`.
pub const DEFAULTS: HostDefaults = HostDefaults {
    listen: "0.0.0.0:8181",
    metrics: "127.0.0.1:9100",
    queue_variable: myevents_domain::messages::EVENT_SERVICE_SUBSCRIBER.queue_variable,
    queue: myevents_domain::messages::EVENT_SERVICE_SUBSCRIBER.queue,
    database: "myevents",
};

/// Everything the event service reads from its environment (its broker and store are read by the
/// host: `BROKER_KIND`, `STORE_KIND`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventServiceConfig {
    /// Listener, CORS, limits, relay, queue and idempotency keys (see [`DEFAULTS`]).
    pub host: HostConfig,
}

impl EventServiceConfig {
    /// Reads and validates the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            host: HostConfig::from_env(&DEFAULTS)?,
        })
    }
}
