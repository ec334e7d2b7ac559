//! The part of consuming that is the same for every adapter: running a handler with retries, marking
//! dead letters, and the handle that stops a consumer. Adapters in other crates use it through
//! [`crate::adapter`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{
    DEAD_LETTER_REASON_HEADER, DEAD_LETTER_SOURCE_HEADER, HandlingError, Message, MessageHandler,
    RetryPolicy, Subscription,
};

/// What to do with a message after its handler ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Handled: acknowledge it.
    Ack,
    /// Never handleable, or retries exhausted: move it to the dead-letter queue with this reason.
    DeadLetter(String),
}

/// Runs `handler` on `message`, retrying transient failures per `policy` (exponential backoff with
/// jitter); poison, or failures past the last attempt, become [`Outcome::DeadLetter`] with the reason.
///
/// It runs in a `message` span (`message_id`, `event_name`, and `trace_id` from the message's
/// `traceparent` header, so the consumer's log lines join the producer's trace), logs the outcome, and
/// counts it in [`crate::metrics`].
pub async fn process(
    handler: &dyn MessageHandler,
    message: &Message,
    policy: RetryPolicy,
) -> Outcome {
    use tracing::Instrument;
    let context = message
        .headers
        .get(crate::trace::TRACEPARENT_HEADER)
        .and_then(|value| crate::trace::TraceContext::parse(value));
    let trace = context
        .map(|context| context.trace_id_hex())
        .unwrap_or_default();
    let span = tracing::info_span!("message", message_id = %message.id,
        event_name = %message.name, trace_id = %trace);
    if let Some(context) = context {
        context.parent(&span);
    }
    let started = std::time::Instant::now();
    let outcome = handle_with_retries(handler, message, policy)
        .instrument(span.clone())
        .await;
    let name = message.name.as_str();
    crate::metrics::HANDLING_SECONDS
        .with_label_values(&[name])
        .observe(started.elapsed().as_secs_f64());
    span.in_scope(|| match &outcome {
        Outcome::Ack => {
            crate::metrics::CONSUMED.with_label_values(&[name]).inc();
            tracing::info!("message handled");
        }
        Outcome::DeadLetter(_) => {
            crate::metrics::DEAD_LETTERED
                .with_label_values(&[name])
                .inc();
        }
    });
    outcome
}

async fn handle_with_retries(
    handler: &dyn MessageHandler,
    message: &Message,
    policy: RetryPolicy,
) -> Outcome {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(policy.first_delay)
        .with_max_delay(policy.max_delay)
        .with_max_times(policy.attempts.saturating_sub(1) as usize)
        .with_jitter();
    let result = (|| async {
        let result = handler.handle(message).await;
        if result.is_err() {
            crate::metrics::FAILED
                .with_label_values(&[message.name.as_str()])
                .inc();
        }
        result
    })
    .retry(backoff)
    .when(|e| matches!(e, HandlingError::Transient(_)))
    .notify(|error, delay| {
        tracing::warn!(
            message_id = %message.id,
            event_name = %message.name,
            %error,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "message handling failed, retrying"
        );
    })
    .await;
    match result {
        Ok(()) => Outcome::Ack,
        Err(HandlingError::Poison(reason)) => Outcome::DeadLetter(format!("poison: {reason}")),
        Err(HandlingError::Transient(reason)) => {
            Outcome::DeadLetter(format!("failed {} times, last: {reason}", policy.attempts))
        }
    }
}

/// Marks `message` as dead-lettered from `subscription` for `reason` (headers
/// `x-dead-letter-reason` and `x-dead-letter-source`) and logs it.
pub fn mark_dead_letter(subscription: &Subscription, message: &mut Message, reason: String) {
    tracing::error!(message_id = %message.id, event_name = %message.name, %reason,
        queue = %subscription.dead_letter_queue(), "message dead-lettered");
    message
        .headers
        .insert(DEAD_LETTER_REASON_HEADER.to_owned(), reason);
    message.headers.insert(
        DEAD_LETTER_SOURCE_HEADER.to_owned(),
        subscription.name.clone(),
    );
}

/// Signals shared between a [`Consumer`] handle and its running task.
#[derive(Debug, Clone, Default)]
pub struct ConsumerSignals {
    /// Stop after the message in hand is finished.
    pub(crate) stop: CancellationToken,
    /// Stop at once, abandoning the message in hand unacknowledged (as a crash would).
    pub(crate) kill: CancellationToken,
    /// Whether the consumer is attached to the broker now.
    pub(crate) attached: Arc<AtomicBool>,
}

impl ConsumerSignals {
    /// Records whether the consumer is attached to the broker now.
    pub fn set_attached(&self, attached: bool) {
        self.attached.store(attached, Ordering::Relaxed);
    }

    /// Resolves when the consumer must stop at once, abandoning the message in hand.
    pub async fn killed(&self) {
        self.kill.cancelled().await;
    }

    /// Resolves when either stop signal fires.
    pub async fn stopping(&self) {
        tokio::select! {
            () = self.stop.cancelled() => {}
            () = self.kill.cancelled() => {}
        }
    }

    /// Whether the consumer was told to stop at once (a simulated crash).
    pub fn is_killed(&self) -> bool {
        self.kill.is_cancelled()
    }

    /// Whether either stop signal fired.
    pub fn is_stopping(&self) -> bool {
        self.stop.is_cancelled() || self.kill.is_cancelled()
    }
}

/// Whether a consumer is attached to its broker; see [`Consumer::status`].
#[derive(Debug, Clone)]
pub struct ConsumerStatus {
    attached: Arc<AtomicBool>,
}

impl ConsumerStatus {
    /// True while the consumer is attached (it is false while reconnecting and after it stopped).
    pub fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Relaxed)
    }
}

/// A running consumer of one subscription. Dropping it leaves the consumer running; stop it with
/// [`Consumer::shutdown`].
#[derive(Debug)]
pub struct Consumer {
    signals: ConsumerSignals,
    task: JoinHandle<()>,
}

impl Consumer {
    pub(crate) fn new(signals: ConsumerSignals, task: JoinHandle<()>) -> Self {
        Self { signals, task }
    }

    /// Spawns an adapter's consume loop `run` with fresh signals whose attachment flag is `attached`
    /// (the adapter sets it, directly or from a client callback). For adapters.
    pub fn spawn<F, Fut>(attached: Arc<AtomicBool>, run: F) -> Self
    where
        F: FnOnce(ConsumerSignals) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let signals = ConsumerSignals {
            attached,
            ..ConsumerSignals::default()
        };
        let task = tokio::spawn(run(signals.clone()));
        Self { signals, task }
    }

    /// Whether the consumer is attached to the broker now (for readiness). False while it reconnects.
    pub fn is_attached(&self) -> bool {
        self.signals.attached.load(Ordering::Relaxed) && !self.task.is_finished()
    }

    /// A cheap, cloneable view of [`Consumer::is_attached`] for health checks.
    pub fn status(&self) -> ConsumerStatus {
        ConsumerStatus {
            attached: Arc::clone(&self.signals.attached),
        }
    }

    /// Stops taking messages, lets the message in hand finish (acknowledged or dead-lettered), closes the
    /// connection and waits for all of that.
    pub async fn shutdown(self) {
        self.signals.stop.cancel();
        if let Err(error) = self.task.await {
            tracing::error!(%error, "consumer task failed");
        }
    }

    /// [`Consumer::shutdown`], but at most for `limit`: a message still in hand then (a slow handler,
    /// retries) is abandoned unacknowledged, so the broker delivers it again. Returns whether the
    /// consumer stopped within `limit`.
    pub async fn shutdown_within(mut self, limit: Duration) -> bool {
        self.signals.stop.cancel();
        match tokio::time::timeout(limit, &mut self.task).await {
            Ok(joined) => {
                if let Err(error) = joined {
                    tracing::error!(%error, "consumer task failed");
                }
                true
            }
            Err(_) => {
                tracing::warn!(
                    "the message in hand did not finish within the shutdown budget; it is left \
                     unacknowledged and the broker delivers it again"
                );
                self.signals.kill.cancel();
                let _ = tokio::time::timeout(Duration::from_secs(1), self.task).await;
                false
            }
        }
    }

    /// Stops at once without acknowledging the message in hand, which the broker then delivers again:
    /// what a crash does. For tests of redelivery.
    pub async fn kill(self) {
        self.signals.kill.cancel();
        let _ = self.task.await;
    }
}
