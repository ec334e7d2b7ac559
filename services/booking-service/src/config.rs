//! The booking service's configuration, read once from the environment at start-up.

use myevents_host::{HostConfig, HostDefaults};
use myevents_platform::config::{ConfigError, parse_or, seconds_or, var};

use crate::service::BookingRules;

/// The booking service's defaults: listens on `0.0.0.0:8282`, metrics on `0.0.0.0:9101`, consumes
/// queue `BOOKING_QUEUE` (default `booking`, the reference's queue), database `myevents_booking`.
pub const DEFAULTS: HostDefaults = HostDefaults {
    listen: "0.0.0.0:8282",
    metrics: "0.0.0.0:9101",
    queue_variable: "BOOKING_QUEUE",
    queue: "booking",
    database: "myevents_booking",
};

/// Everything the booking service reads from its environment (its broker and store are read by the
/// host: `BROKER_KIND`, `STORE_KIND`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingServiceConfig {
    /// Listener, CORS, limits, relay, queue and idempotency keys (see [`DEFAULTS`]).
    pub host: HostConfig,
    /// Most seats one booking may take (`MAX_SEATS_PER_BOOKING`, default 10).
    pub max_seats_per_booking: u32,
    /// Seats on sale for an `eventCreated` message that states no capacity, as a reference event
    /// service sends (`DEFAULT_EVENT_CAPACITY`, seats; unset: such events are known but sold out).
    pub default_capacity: Option<u32>,
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
            host: HostConfig::from_env(&DEFAULTS)?,
            max_seats_per_booking,
            default_capacity,
            seat_return_sweep: seconds_or(
                "SEAT_RETURN_SWEEP_INTERVAL",
                std::time::Duration::from_secs(60),
            )?,
        })
    }

    /// The booking rules this configuration sets.
    pub fn rules(&self) -> BookingRules {
        BookingRules {
            max_seats_per_booking: self.max_seats_per_booking,
            default_capacity: self.default_capacity,
        }
    }
}
