//! Prometheus metrics of message handling, registered in the process's default registry (the
//! services expose it on `/metrics`), as [`HandlingMetrics`], handed by a [`crate::Consumer`] to its
//! consume loop. Labels are bounded: the event name only, never an id.
//!
//! - `myevents_messages_consumed_total{event_name}`: messages handled and acknowledged;
//! - `myevents_messages_failed_total{event_name}`: failed handling attempts (each retry counts);
//! - `myevents_messages_dead_lettered_total{event_name}`: messages moved to the dead-letter queue;
//! - `myevents_message_handling_seconds{event_name}`: time from delivery to the outcome (seconds);
//! - `myevents_consumer_restarts_total{subscription}`: consume loops that ended unexpectedly and were
//!   started again.

use std::sync::LazyLock;

use myevents_platform::metrics::registered;
use prometheus::{HistogramVec, IntCounterVec, register_histogram_vec, register_int_counter_vec};

/// The series of message handling. Cheap to clone: every clone counts in the same series.
#[derive(Debug, Clone)]
pub struct HandlingMetrics {
    /// Messages handled and acknowledged, per event name.
    pub consumed: IntCounterVec,
    /// Failed handling attempts, per event name.
    pub failed: IntCounterVec,
    /// Messages dead-lettered, per event name.
    pub dead_lettered: IntCounterVec,
    /// Handling time, per event name, in seconds.
    pub handling_seconds: HistogramVec,
    /// Consume loops that ended unexpectedly and were started again, per subscription.
    pub consumer_restarts: IntCounterVec,
}

fn by_event_name(name: &str, help: &str) -> IntCounterVec {
    registered(name, register_int_counter_vec!(name, help, &["event_name"]))
}

impl HandlingMetrics {
    /// The process's series: registered in the default registry by the first call and shared by
    /// every later one, since the registry takes each name once.
    pub fn registered() -> Self {
        static METRICS: LazyLock<HandlingMetrics> = LazyLock::new(|| HandlingMetrics {
            consumed: by_event_name(
                "myevents_messages_consumed_total",
                "Messages handled and acknowledged.",
            ),
            failed: by_event_name(
                "myevents_messages_failed_total",
                "Failed message handling attempts (each retry counts).",
            ),
            dead_lettered: by_event_name(
                "myevents_messages_dead_lettered_total",
                "Messages moved to the dead-letter queue.",
            ),
            handling_seconds: registered(
                "myevents_message_handling_seconds",
                register_histogram_vec!(
                    "myevents_message_handling_seconds",
                    "Time from delivery to the outcome (acknowledged or dead-lettered), in seconds.",
                    &["event_name"]
                ),
            ),
            consumer_restarts: registered(
                "myevents_consumer_restarts_total",
                register_int_counter_vec!(
                    "myevents_consumer_restarts_total",
                    "Consume loops that ended unexpectedly (error or panic) and were started again.",
                    &["subscription"]
                ),
            ),
        });
        METRICS.clone()
    }
}

/// The process's series ([`HandlingMetrics::registered`]).
impl Default for HandlingMetrics {
    fn default() -> Self {
        Self::registered()
    }
}
