//! The messaging series (Prometheus, default registry; see `myevents_platform::metrics`), each by
//! `service`: `myevents_messages_published_total{service, event_name}`,
//! `myevents_messages_publish_failures_total`, `myevents_outbox_pending` (messages, all of them),
//! `myevents_outbox_oldest_pending_age_seconds`, `myevents_outbox_backlog_readable` (1 or 0), `myevents_consumer_attached` (1 or 0) and
//! `myevents_consumer_failing_seconds`. Message
//! handling is counted by the broker adapters (`myevents_broker::metrics`). All of them as
//! [`MessagingMetrics`], handed by `crate::Messaging` to the relay, the backlog watch and the
//! consumer's sampler.

use std::sync::LazyLock;

use myevents_platform::metrics::registered;
use prometheus::{IntCounterVec, IntGaugeVec, register_int_counter_vec, register_int_gauge_vec};

/// The messaging series of one service (their `service` label). Cheap to clone: every clone counts
/// in the same series.
#[derive(Debug, Clone)]
pub struct MessagingMetrics {
    /// The `service` label.
    pub service: &'static str,
    /// Messages the outbox relay published (confirmed by the broker), by service and event name.
    pub published: IntCounterVec,
    /// Relay rounds that failed (broker or store unavailable); the messages stay pending.
    pub publish_failures: IntCounterVec,
    /// last count while the store cannot be read, see [`MessagingMetrics::outbox_backlog_readable`]).
    pub outbox_pending: IntGaugeVec,
    /// Whether the last look at the outbox backlog could read the store (1) or not (0).
    pub outbox_backlog_readable: IntGaugeVec,
    /// be read it goes on growing from the last known oldest message.
    pub outbox_oldest_age: IntGaugeVec,
    /// Whether the service's consumer is attached to its broker (1) or not (0), sampled every second.
    pub consumer_attached: IntGaugeVec,
    /// stable run since), in seconds; 0 while it runs. Sampled every second.
    pub consumer_failing: IntGaugeVec,
}

impl MessagingMetrics {
    /// `service`'s series, listed (at zero) from the start, before the relay's first round, so that
    /// an alert on them sees the service at once. The families are registered in the default
    /// registry by the first call and shared by every later one, since the registry takes each name
    /// once.
    pub fn registered(service: &'static str) -> Self {
        static METRICS: LazyLock<MessagingMetrics> = LazyLock::new(|| MessagingMetrics {
            service: "",
            published: registered(
                "myevents_messages_published_total",
                register_int_counter_vec!(
                    "myevents_messages_published_total",
                    "Messages published from the outbox and confirmed by the broker, by service and event name.",
                    &["service", "event_name"]
                ),
            ),
            publish_failures: registered(
                "myevents_messages_publish_failures_total",
                register_int_counter_vec!(
                    "myevents_messages_publish_failures_total",
                    "Outbox relay rounds that failed to publish; their messages stay pending.",
                    &["service"]
                ),
            ),
            outbox_pending: registered(
                "myevents_outbox_pending",
                register_int_gauge_vec!(
                    "myevents_outbox_pending",
                    "Messages waiting in the outbox to be published, all counted (the last count while \
                     myevents_outbox_backlog_readable is 0).",
                    &["service"]
                ),
            ),
            outbox_backlog_readable: registered(
                "myevents_outbox_backlog_readable",
                register_int_gauge_vec!(
                    "myevents_outbox_backlog_readable",
                    "1 when the last look at the outbox backlog (every 5 s) read the store, 0 when it could not.",
                    &["service"]
                ),
            ),
            outbox_oldest_age: registered(
                "myevents_outbox_oldest_pending_age_seconds",
                register_int_gauge_vec!(
                    "myevents_outbox_oldest_pending_age_seconds",
                    "Age of the oldest message waiting in the outbox, in seconds (0 when none).",
                    &["service"]
                ),
            ),
            consumer_attached: registered(
                "myevents_consumer_attached",
                register_int_gauge_vec!(
                    "myevents_consumer_attached",
                    "1 while the service's consumer is attached to the broker, else 0 (sampled every second).",
                    &["service"]
                ),
            ),
            consumer_failing: registered(
                "myevents_consumer_failing_seconds",
                register_int_gauge_vec!(
                    "myevents_consumer_failing_seconds",
                    "Seconds the service's consume loop has been failing (restarted without a stable run \
                     since); 0 while it runs.",
                    &["service"]
                ),
            ),
        });
        let metrics = MessagingMetrics {
            service,
            ..METRICS.clone()
        };
        for series in [
            &metrics.outbox_pending,
            &metrics.outbox_oldest_age,
            &metrics.outbox_backlog_readable,
            &metrics.consumer_attached,
            &metrics.consumer_failing,
        ] {
            series.with_label_values(&[service]);
        }
        metrics.publish_failures.with_label_values(&[service]);
        metrics
    }
}
