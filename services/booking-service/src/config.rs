//! The booking service's configuration, read once from the environment at start-up.

use myevents_host::{FromEnv, HostDefaults};
use myevents_platform::config::{ConfigError, parse_or, seconds_or, var};

use std::time::Duration;

use crate::service::{BookingRules, Fault};

/// `FAULT_INJECTION`, logged loudly when set.
fn fault_from_env() -> Result<Option<Fault>, ConfigError> {
    let Some(value) = var("FAULT_INJECTION") else {
        return Ok(None);
    };
    let fault = Fault::parse(&value).ok_or_else(|| {
        ConfigError::new(
            "FAULT_INJECTION",
            &value,
            "must be crash-after-seat-hold or drop-after-seat-hold",
        )
    })?;
    tracing::warn!(
        ?fault,
        "FAULT_INJECTION is set: bookings will be interrupted on purpose"
    );
    Ok(Some(fault))
}

/// The booking service's defaults: listens on `0.0.0.0:8282`, metrics on `127.0.0.1:9101`, consumes
/// queue `BOOKING_QUEUE` (default `booking`, the reference's queue), database `myevents_booking`.
pub const DEFAULTS: HostDefaults = HostDefaults {
    listen: "0.0.0.0:8282",
    metrics: "127.0.0.1:9101",
    queue_variable: myevents_domain::messages::BOOKING_SERVICE_SUBSCRIBER.queue_variable,
    queue: myevents_domain::messages::BOOKING_SERVICE_SUBSCRIBER.queue,
    database: "myevents_booking",
};

/// The booking service's own settings (the host reads the rest: `myevents_host::HostConfig`, and
/// the broker and the store: `BROKER_KIND`, `STORE_KIND`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BookingServiceConfig {
    /// Most seats one booking may take (`MAX_SEATS_PER_BOOKING`, default 10).
    pub max_seats_per_booking: u32,
    /// Seats on sale for an `eventCreated` message that states no capacity, as a reference event
    /// service sends (`DEFAULT_EVENT_CAPACITY`, seats; unset: such events are known but sold out).
    pub default_capacity: Option<u32>,
    /// How often the reconciler looks for bookings and cancellations a crash interrupted between
    /// their two writes and finishes them (`RECONCILE_INTERVAL`, seconds, default 30).
    pub reconcile_every: Duration,
    /// How old an interrupted seat hold or seat return must be before the reconciler finishes it;
    /// younger ones belong to the request still running (`RECONCILE_GRACE`, seconds, default 30).
    pub reconcile_grace: Duration,
    /// How long a buyer's hold keeps its seats before it lapses (`HOLD_TTL`, seconds, default 600).
    pub hold_ttl: Duration,
    /// How often lapsed holds are looked for and their seats given back (`HOLD_SWEEP_INTERVAL`,
    /// seconds, default 5): a hold's seats are back on sale at most this long after it lapsed.
    pub hold_sweep_every: Duration,
    /// A fault injected for tests (`FAULT_INJECTION`: `crash-after-seat-hold` or
    /// `drop-after-seat-hold`; unset in production).
    pub fault: Option<Fault>,
}

/// Every setting at the default its variable documents: 10 seats per booking, no default capacity,
/// reconciliation every 30 s of what is older than 30 s, holds kept 10 minutes and looked at every
/// 5 s once lapsed, no fault.
impl Default for BookingServiceConfig {
    fn default() -> Self {
        Self {
            max_seats_per_booking: 10,
            default_capacity: None,
            reconcile_every: Duration::from_secs(30),
            reconcile_grace: Duration::from_secs(30),
            hold_ttl: Duration::from_secs(600),
            hold_sweep_every: Duration::from_secs(5),
            fault: None,
        }
    }
}

impl FromEnv for BookingServiceConfig {
    /// Reads and validates the booking service's own variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let max_seats_per_booking =
            parse_or("MAX_SEATS_PER_BOOKING", defaults.max_seats_per_booking)?;
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
            max_seats_per_booking,
            default_capacity,
            reconcile_every: seconds_or("RECONCILE_INTERVAL", defaults.reconcile_every)?,
            reconcile_grace: seconds_or("RECONCILE_GRACE", defaults.reconcile_grace)?,
            hold_ttl: seconds_or("HOLD_TTL", defaults.hold_ttl)?,
            hold_sweep_every: seconds_or("HOLD_SWEEP_INTERVAL", defaults.hold_sweep_every)?,
            fault: fault_from_env()?,
        })
    }
}

impl BookingServiceConfig {
    /// The booking rules this configuration sets.
    pub fn rules(&self) -> BookingRules {
        BookingRules {
            max_seats_per_booking: self.max_seats_per_booking,
            default_capacity: self.default_capacity,
            hold_ttl: self.hold_ttl,
        }
    }
}
