//! The circuit breaker in front of MongoDB: while the database does not answer, every repository call
//! fails at once with [`RepositoryError::Unavailable`] (a 503 with `Retry-After` for a client)
//! instead of waiting out the server selection time-out (`MONGO_SERVER_SELECTION_TIMEOUT`, 5 s).
//!
//! Its failure detector is the driver's own server monitoring (Server Discovery and Monitoring,
//! <https://specifications.readthedocs.io/en/latest/server-discovery-and-monitoring/server-discovery-and-monitoring/>):
//! the driver marks a server unknown when a check of it fails or a connection to it breaks, and
//! checks it again every heartbeat (`MONGO_HEARTBEAT_FREQUENCY`, the probe interval). States
//! ([`CircuitState`], the gauge `myevents_circuit_state{dependency="mongodb",database}` of
//! [`CircuitMetrics`]):
//! - **closed**: the driver knows a writable server (a primary, or a standalone server); calls go
//!   through;
//! - **open**: the driver lost its writable server (it was writable and no longer is, or a check
//!   failed while none was): calls fail at once, naming the last error;
//! - **half-open**: while open, a heartbeat (the probe) is in flight: calls still fail at once; the
//!   probe's success closes the circuit (the topology has a writable server again), its failure
//!   opens it again.
//!
//! A new circuit is closed; a first check that fails opens it.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, LazyLock, Mutex};

use mongodb::event::EventHandler;
use mongodb::event::sdam::SdamEvent;
use prometheus::{IntGauge, IntGaugeVec, register_int_gauge_vec};

use crate::{Cause, RepositoryError};

/// The series of the MongoDB stores' circuits. Cheap to clone: every clone counts in the same
/// series.
#[derive(Debug, Clone)]
pub struct CircuitMetrics {
    /// Every circuit's state, by `dependency` (`mongodb`) and `database`: 0 closed, 1 open,
    /// 2 half-open.
    pub state: IntGaugeVec,
}

impl CircuitMetrics {
    /// The process's series: registered in the default registry by the first call and shared by
    /// every later one, since the registry takes each name once.
    pub fn registered() -> Self {
        static METRICS: LazyLock<CircuitMetrics> = LazyLock::new(|| CircuitMetrics {
            state: myevents_platform::metrics::registered(
                "myevents_circuit_state",
                register_int_gauge_vec!(
                    "myevents_circuit_state",
                    "State of the circuit breaker in front of a dependency: 0 closed (calls go through), 1 open (calls fail at once), 2 half-open (a probe is in flight).",
                    &["dependency", "database"]
                ),
            ),
        });
        METRICS.clone()
    }
}

/// The state of a circuit breaker (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed = 0,
    /// Calls fail at once.
    Open = 1,
    /// Calls fail at once while a probe is in flight.
    HalfOpen = 2,
}

impl CircuitState {
    fn from_u8(value: u8) -> Self {
        match value {
            1 => Self::Open,
            2 => Self::HalfOpen,
            _ => Self::Closed,
        }
    }
}

/// The breaker of one MongoDB client, fed by the driver's monitoring events.
#[derive(Debug)]
pub(crate) struct Circuit {
    state: AtomicU8,
    /// Whether the driver's last topology description has a writable server.
    writable: AtomicBool,
    /// The error that opened it, for the callers' and readiness' message.
    reason: Mutex<String>,
    database: String,
    /// This circuit's series of [`CircuitMetrics::state`].
    gauge: IntGauge,
}

impl Circuit {
    /// A closed circuit for the client of `database` (the gauge's label), counting in `metrics`.
    pub(crate) fn new(database: &str, metrics: &CircuitMetrics) -> Arc<Self> {
        let gauge = metrics.state.with_label_values(&["mongodb", database]);
        gauge.set(0);
        Arc::new(Self {
            state: AtomicU8::new(CircuitState::Closed as u8),
            writable: AtomicBool::new(false),
            reason: Mutex::new(String::new()),
            database: database.to_owned(),
            gauge,
        })
    }

    /// The driver's monitoring handler that drives this circuit (`ClientOptions::sdam_event_handler`).
    pub(crate) fn handler(self: &Arc<Self>) -> EventHandler<SdamEvent> {
        let circuit = Arc::clone(self);
        EventHandler::callback(move |event| circuit.on(&event))
    }

    fn on(&self, event: &SdamEvent) {
        match event {
            SdamEvent::TopologyDescriptionChanged(change) => {
                let writable = change.new_description.has_writable_server();
                self.writable.store(writable, Ordering::Relaxed);
                if writable {
                    self.set(CircuitState::Closed, None);
                } else if change.previous_description.has_writable_server()
                    // A client that shuts down empties its topology: nothing to open then.
                    && !change.new_description.servers().is_empty()
                {
                    self.set(
                        CircuitState::Open,
                        Some("the driver lost its writable server".to_owned()),
                    );
                }
            }
            SdamEvent::ServerHeartbeatStarted(_) if self.state() == CircuitState::Open => {
                self.set(CircuitState::HalfOpen, None);
            }
            SdamEvent::ServerHeartbeatFailed(failed) if !self.writable.load(Ordering::Relaxed) => {
                self.set(
                    CircuitState::Open,
                    Some(format!(
                        "checking {} failed: {}",
                        failed.server_address, failed.failure
                    )),
                );
            }
            _ => {}
        }
    }

    fn set(&self, state: CircuitState, reason: Option<String>) {
        if let Some(reason) = reason {
            *self.reason.lock().unwrap_or_else(|e| e.into_inner()) = reason;
        }
        let previous = CircuitState::from_u8(self.state.swap(state as u8, Ordering::Relaxed));
        self.gauge.set(state as i64);
        match (previous, state) {
            (CircuitState::Closed, CircuitState::Open) => tracing::warn!(
                database = %self.database, reason = %self.reason(),
                "MongoDB circuit open: calls fail at once until the driver's next check succeeds"
            ),
            (CircuitState::Open | CircuitState::HalfOpen, CircuitState::Closed) => {
                tracing::info!(database = %self.database, "MongoDB circuit closed: the database answers again");
            }
            _ => {}
        }
    }

    /// The current state.
    pub(crate) fn state(&self) -> CircuitState {
        CircuitState::from_u8(self.state.load(Ordering::Relaxed))
    }

    fn reason(&self) -> String {
        self.reason
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// `Ok` when calls may go through.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] when the circuit is open or half-open, naming why.
    pub(crate) fn check(&self) -> Result<(), RepositoryError> {
        match self.state() {
            CircuitState::Closed => Ok(()),
            state => Err(RepositoryError::Unavailable(Cause::msg(format!(
                "MongoDB circuit {}: {}",
                if state == CircuitState::Open {
                    "open"
                } else {
                    "half-open"
                },
                self.reason()
            )))),
        }
    }
}
