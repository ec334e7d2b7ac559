//! Prometheus metrics of message handling, registered in the process's default registry (the
//! services expose it on `/metrics`). Labels are bounded: the event name only, never an id.
//!
//! - `myevents_messages_consumed_total{event_name}`: messages handled and acknowledged;
//! - `myevents_messages_failed_total{event_name}`: failed handling attempts (each retry counts);
//! - `myevents_messages_dead_lettered_total{event_name}`: messages moved to the dead-letter queue;
//! - `myevents_message_handling_seconds{event_name}`: time from delivery to the outcome (seconds);
//! - `myevents_consumer_restarts_total{subscription}`: consume loops that ended unexpectedly and were
//!   started again.

use std::sync::LazyLock;

use prometheus::{HistogramVec, IntCounterVec, register_histogram_vec, register_int_counter_vec};

fn counter(name: &str, help: &str) -> IntCounterVec {
    register_int_counter_vec!(name, help, &["event_name"])
        .unwrap_or_else(|e| panic!("registering {name}: {e}"))
}

/// Consume loops that ended unexpectedly and were started again, per subscription.
pub static CONSUMER_RESTARTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    register_int_counter_vec!(
        "myevents_consumer_restarts_total",
        "Consume loops that ended unexpectedly (error or panic) and were started again.",
        &["subscription"]
    )
    .unwrap_or_else(|e| panic!("registering myevents_consumer_restarts_total: {e}"))
});

/// Messages handled and acknowledged, per event name.
pub static CONSUMED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "myevents_messages_consumed_total",
        "Messages handled and acknowledged.",
    )
});

/// Failed handling attempts, per event name.
pub static FAILED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "myevents_messages_failed_total",
        "Failed message handling attempts (each retry counts).",
    )
});

/// Messages dead-lettered, per event name.
pub static DEAD_LETTERED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    counter(
        "myevents_messages_dead_lettered_total",
        "Messages moved to the dead-letter queue.",
    )
});

/// Handling time, per event name, in seconds.
pub static HANDLING_SECONDS: LazyLock<HistogramVec> = LazyLock::new(|| {
    register_histogram_vec!(
        "myevents_message_handling_seconds",
        "Time from delivery to the outcome (acknowledged or dead-lettered), in seconds.",
        &["event_name"]
    )
    .unwrap_or_else(|e| panic!("registering myevents_message_handling_seconds: {e}"))
});
