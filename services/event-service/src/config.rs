//! The event service's configuration: its defaults, and its own settings beyond the host's
//! (`myevents_host::HostConfig`), read once from the environment at start-up.

use std::time::Duration;

use myevents_host::{FromEnv, HostDefaults};
use myevents_platform::config::{ConfigError, seconds_or};

/// The event service's defaults: listens on `0.0.0.0:8181`, metrics on `127.0.0.1:9100`, consumes
/// queue (or group) `EVENTS_QUEUE` (default `events-service`), database `myevents`.
pub const DEFAULTS: HostDefaults = HostDefaults {
    listen: "0.0.0.0:8181",
    metrics: "127.0.0.1:9100",
    queue_variable: myevents_domain::messages::EVENT_SERVICE_SUBSCRIBER.queue_variable,
    queue: myevents_domain::messages::EVENT_SERVICE_SUBSCRIBER.queue,
    database: "myevents",
};

/// `READ_CACHE_MAX_AGE` when unset: 1 second.
pub const DEFAULT_READ_CACHE_MAX_AGE: Duration = Duration::from_secs(1);

/// The event service's own settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventServiceConfig {
    /// How long the answer of a read (`GET /events`, `GET /events/{id}`, `GET /locations`) may be
    /// served again when nothing changed on this replica (`READ_CACHE_MAX_AGE`, seconds, default 1;
    /// 0 keeps nothing): the bound on how old a copy is after a change another replica made. A
    /// change on this replica is served at once.
    pub read_cache_max_age: Duration,
}

impl Default for EventServiceConfig {
    fn default() -> Self {
        Self {
            read_cache_max_age: DEFAULT_READ_CACHE_MAX_AGE,
        }
    }
}

impl FromEnv for EventServiceConfig {
    /// Reads `READ_CACHE_MAX_AGE`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable when it is not a number of seconds.
    fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            read_cache_max_age: seconds_or("READ_CACHE_MAX_AGE", DEFAULT_READ_CACHE_MAX_AGE)?,
        })
    }
}
