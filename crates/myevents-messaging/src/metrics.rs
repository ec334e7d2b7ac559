//! The messaging series (Prometheus, default registry; see `myevents_platform::metrics`), each by
//! `service`: `myevents_messages_published_total{service, event_name}`,
//! `myevents_messages_publish_failures_total`, `myevents_outbox_pending` (messages, all of them),
//! `myevents_outbox_oldest_pending_age_seconds`, `myevents_outbox_backlog_readable` (1 or 0), `myevents_consumer_attached` (1 or 0) and
//! `myevents_consumer_failing_seconds`. Message
//! handling is counted by the broker adapters (`myevents_broker::metrics`).

use std::sync::LazyLock;

use myevents_platform::metrics::registered;
use prometheus::{IntCounterVec, IntGaugeVec, register_int_counter_vec, register_int_gauge_vec};

/// Messages the outbox relay published (confirmed by the broker), by service and event name.
pub static PUBLISHED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(
        "myevents_messages_published_total",
        register_int_counter_vec!(
            "myevents_messages_published_total",
            "Messages published from the outbox and confirmed by the broker, by service and event name.",
            &["service", "event_name"]
        ),
    )
});

/// Relay rounds that failed (broker or store unavailable); the messages stay pending.
pub static PUBLISH_FAILURES: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(
        "myevents_messages_publish_failures_total",
        register_int_counter_vec!(
            "myevents_messages_publish_failures_total",
            "Outbox relay rounds that failed to publish; their messages stay pending.",
            &["service"]
        ),
    )
});

/// Messages waiting in the outbox, all of them, as of the last look at the backlog (every 5 s; the
/// last count while the store cannot be read, see [`OUTBOX_BACKLOG_READABLE`]).
pub static OUTBOX_PENDING: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    registered(
        "myevents_outbox_pending",
        register_int_gauge_vec!(
            "myevents_outbox_pending",
            "Messages waiting in the outbox to be published, all counted (the last count while \
             myevents_outbox_backlog_readable is 0).",
            &["service"]
        ),
    )
});

/// Whether the last look at the outbox backlog could read the store (1) or not (0).
pub static OUTBOX_BACKLOG_READABLE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    registered(
        "myevents_outbox_backlog_readable",
        register_int_gauge_vec!(
            "myevents_outbox_backlog_readable",
            "1 when the last look at the outbox backlog (every 5 s) read the store, 0 when it could not.",
            &["service"]
        ),
    )
});

/// Age of the oldest message waiting in the outbox, in seconds (0 when none); while the store cannot
/// be read it goes on growing from the last known oldest message.
pub static OUTBOX_OLDEST_AGE: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    registered(
        "myevents_outbox_oldest_pending_age_seconds",
        register_int_gauge_vec!(
            "myevents_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting in the outbox, in seconds (0 when none).",
            &["service"]
        ),
    )
});

/// Whether the service's consumer is attached to its broker (1) or not (0), sampled every second.
pub static CONSUMER_ATTACHED: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    registered(
        "myevents_consumer_attached",
        register_int_gauge_vec!(
            "myevents_consumer_attached",
            "1 while the service's consumer is attached to the broker, else 0 (sampled every second).",
            &["service"]
        ),
    )
});

/// For how long the service's consume loop has been failing (ending and being restarted without a
/// stable run since), in seconds; 0 while it runs. Sampled every second.
pub static CONSUMER_FAILING: LazyLock<IntGaugeVec> = LazyLock::new(|| {
    registered(
        "myevents_consumer_failing_seconds",
        register_int_gauge_vec!(
            "myevents_consumer_failing_seconds",
            "Seconds the service's consume loop has been failing (restarted without a stable run \
             since); 0 while it runs.",
            &["service"]
        ),
    )
});

/// Registers the series with `service`'s label, so that they are listed (at zero) from the start,
/// before the relay's first round: an alert on them sees the service at once.
pub fn register(service: &str) {
    LazyLock::force(&PUBLISHED);
    PUBLISH_FAILURES.with_label_values(&[service]);
    OUTBOX_PENDING.with_label_values(&[service]);
    OUTBOX_OLDEST_AGE.with_label_values(&[service]);
    OUTBOX_BACKLOG_READABLE.with_label_values(&[service]);
    CONSUMER_ATTACHED.with_label_values(&[service]);
    CONSUMER_FAILING.with_label_values(&[service]);
}
