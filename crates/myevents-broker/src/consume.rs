//! The part of consuming that is the same for every adapter: running a handler with retries, marking
//! dead letters, and the handle that stops a consumer. Adapters in other crates use it through
//! [`crate::adapter`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use backon::{BackoffBuilder, ExponentialBuilder};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::metrics::HandlingMetrics;
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
/// jitter); poison, or transient failures past the last attempt, become [`Outcome::DeadLetter`] with
/// the reason. [`HandlingError::Unavailable`] is retried with the same backoff until the handler
/// gets past it, however long that takes (the adapters end the wait when the consumer is killed or
/// its shutdown budget is spent, leaving the message unacknowledged); those waits never count
/// against the policy's attempts.
///
/// It runs in a `message` span (`message_id`, `event_name`, and `trace_id` from the message's
/// `traceparent` header, so the consumer's log lines join the producer's trace), logs the outcome, and
/// counts it in `metrics`.
pub async fn process(
    handler: &dyn MessageHandler,
    message: &Message,
    policy: RetryPolicy,
    metrics: &HandlingMetrics,
) -> Outcome {
    use tracing::Instrument;
    let context = message
        .headers
        .get(myevents_platform::trace::TRACEPARENT_HEADER)
        .and_then(|value| myevents_platform::trace::TraceContext::parse(value));
    let trace = context
        .map(|context| context.trace_id_hex())
        .unwrap_or_default();
    let span = tracing::info_span!("message", message_id = %message.id,
        event_name = %message.name, trace_id = %trace);
    if let Some(context) = context {
        context.parent(&span);
    }
    let started = std::time::Instant::now();
    let outcome = handle_with_retries(handler, message, policy, metrics)
        .instrument(span.clone())
        .await;
    let name = message.name.as_str();
    metrics
        .handling_seconds
        .with_label_values(&[name])
        .observe(started.elapsed().as_secs_f64());
    span.in_scope(|| match &outcome {
        Outcome::Ack => {
            metrics.consumed.with_label_values(&[name]).inc();
            tracing::info!("message handled");
        }
        Outcome::DeadLetter(_) => {
            metrics.dead_lettered.with_label_values(&[name]).inc();
        }
    });
    outcome
}

async fn handle_with_retries(
    handler: &dyn MessageHandler,
    message: &Message,
    policy: RetryPolicy,
    metrics: &HandlingMetrics,
) -> Outcome {
    let backoff = || {
        ExponentialBuilder::default()
            .with_min_delay(policy.first_delay)
            .with_max_delay(policy.max_delay)
            .with_jitter()
    };
    // Retries of transient failures, counted against the policy's attempts.
    let mut retries = backoff()
        .with_max_times(policy.attempts.saturating_sub(1) as usize)
        .build();
    // Waits for a dependency, never exhausted; restarted once it answered.
    let mut waits = backoff().without_max_times().build();
    loop {
        let error = match handler.handle(message).await {
            Ok(()) => return Outcome::Ack,
            Err(error) => error,
        };
        metrics
            .failed
            .with_label_values(&[message.name.as_str()])
            .inc();
        let delay = match &error {
            HandlingError::Poison(reason) => {
                return Outcome::DeadLetter(format!("poison: {reason}"));
            }
            HandlingError::Transient(reason) => {
                waits = backoff().without_max_times().build();
                match retries.next() {
                    Some(delay) => delay,
                    None => {
                        return Outcome::DeadLetter(format!(
                            "failed {} times, last: {reason}",
                            policy.attempts
                        ));
                    }
                }
            }
            HandlingError::Unavailable(_) => waits.next().unwrap_or(policy.max_delay),
        };
        tracing::warn!(
            message_id = %message.id,
            event_name = %message.name,
            %error,
            retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "message handling failed, retrying"
        );
        tokio::time::sleep(delay).await;
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

/// Signals shared between a [`Consumer`] handle and its running task, and the series its consume
/// loop counts in.
#[derive(Debug, Clone, Default)]
pub struct ConsumerSignals {
    /// Stop after the message in hand is finished.
    pub(crate) stop: CancellationToken,
    /// Stop at once, abandoning the message in hand unacknowledged (as a crash would).
    pub(crate) kill: CancellationToken,
    /// Whether the consumer is attached to the broker now.
    pub(crate) attached: Arc<AtomicBool>,
    /// The series of message handling.
    pub(crate) metrics: HandlingMetrics,
}

impl ConsumerSignals {
    /// The series the consume loop counts in (for [`process`]).
    pub fn metrics(&self) -> &HandlingMetrics {
        &self.metrics
    }

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

/// Whether a consumer is attached to its broker and whether its consume loop keeps running; see
/// [`Consumer::status`].
#[derive(Debug, Clone)]
pub struct ConsumerStatus {
    attached: Arc<AtomicBool>,
    health: Arc<Mutex<Health>>,
}

/// How a supervised consume loop fares.
#[derive(Debug, Default)]
struct Health {
    /// Since when the loop has been failing: set when it ends unexpectedly, cleared once it has run
    /// attached for [`STABLE_RUN`] after that.
    failing_since: Option<Instant>,
    /// Since when it has been attached without ending, if it is.
    attached_since: Option<Instant>,
    /// Times the loop ended unexpectedly and was started again.
    restarts: u64,
}

/// How long a restarted consume loop must run attached before it counts as healthy again (30 s):
/// longer than a failing run takes (attaching, handling a poison message, a dead-letter publish
/// timing out), so a loop that keeps failing stays failing.
pub const STABLE_RUN: Duration = Duration::from_secs(30);

/// First delay before restarting a consume loop that ended (doubling per restart).
const RESTART_FIRST_DELAY: Duration = Duration::from_millis(200);
/// Longest delay between two restarts.
const RESTART_MAX_DELAY: Duration = Duration::from_secs(30);

fn lock_health(health: &Mutex<Health>) -> std::sync::MutexGuard<'_, Health> {
    health
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ConsumerStatus {
    /// True while the consumer is attached (it is false while reconnecting and after it stopped).
    pub fn is_attached(&self) -> bool {
        self.attached.load(Ordering::Relaxed)
    }

    /// How long the consume loop has been failing: `Some` from the moment it ended unexpectedly
    /// (an error it could not recover from, a panic) until it has run attached for [`STABLE_RUN`]
    /// again; `None` while it runs. A lost broker the loop reconnects to is not a failure (readiness
    /// covers it).
    pub fn failing_for(&self) -> Option<Duration> {
        lock_health(&self.health)
            .failing_since
            .map(|since| since.elapsed())
    }

    /// How many times the consume loop ended unexpectedly and was started again.
    pub fn restarts(&self) -> u64 {
        lock_health(&self.health).restarts
    }

    /// Samples the attachment (every second, by the supervisor).
    fn observe(&self) {
        let now = Instant::now();
        let mut health = lock_health(&self.health);
        if self.is_attached() {
            let since = *health.attached_since.get_or_insert(now);
            if now.duration_since(since) >= STABLE_RUN {
                health.failing_since = None;
            }
        } else {
            health.attached_since = None;
        }
    }

    fn ended_unexpectedly(&self) {
        let mut health = lock_health(&self.health);
        health.attached_since = None;
        health.failing_since.get_or_insert_with(Instant::now);
        health.restarts += 1;
    }
}

/// A running consumer of one subscription. Dropping it leaves the consumer running; stop it with
/// [`Consumer::shutdown`].
#[derive(Debug)]
pub struct Consumer {
    signals: ConsumerSignals,
    status: ConsumerStatus,
    task: JoinHandle<()>,
}

impl Consumer {
    /// Runs an adapter's consume loop for `subscription` under supervision: `run` starts one run of
    /// the loop with the consumer's signals (the adapter sets `attached`, directly or from a client
    /// callback). A run that ends while the consumer is not stopping (an error the loop gave up on,
    /// a panic) is logged, counted in `myevents_consumer_restarts_total{subscription}` and started
    /// again after a delay (200 ms doubling to 30 s, back to 200 ms after a run of [`STABLE_RUN`]),
    /// and [`ConsumerStatus::failing_for`] says for how long it has been failing.
    pub fn spawn<F, Fut>(subscription: &str, attached: Arc<AtomicBool>, run: F) -> Self
    where
        F: FnMut(ConsumerSignals) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let signals = ConsumerSignals {
            attached: Arc::clone(&attached),
            ..ConsumerSignals::default()
        };
        let status = ConsumerStatus {
            attached,
            health: Arc::default(),
        };
        let task = tokio::spawn(supervise(
            subscription.to_owned(),
            signals.clone(),
            status.clone(),
            run,
        ));
        Self {
            signals,
            status,
            task,
        }
    }

    /// Whether the consumer is attached to the broker now (for readiness). False while it reconnects.
    pub fn is_attached(&self) -> bool {
        self.signals.attached.load(Ordering::Relaxed) && !self.task.is_finished()
    }

    /// A cheap, cloneable view of the consumer's attachment and health, for the probes.
    pub fn status(&self) -> ConsumerStatus {
        self.status.clone()
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

/// Runs `run` again and again until the consumer stops (see [`Consumer::spawn`]).
async fn supervise<F, Fut>(
    subscription: String,
    signals: ConsumerSignals,
    status: ConsumerStatus,
    mut run: F,
) where
    F: FnMut(ConsumerSignals) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let restarts = signals
        .metrics
        .consumer_restarts
        .with_label_values(&[subscription.as_str()]);
    let mut delay = RESTART_FIRST_DELAY;
    loop {
        let started = Instant::now();
        // Its own task, so that a panic in the loop (or a handler) ends only this run.
        let mut running = tokio::spawn(run(signals.clone()));
        let mut sample = tokio::time::interval(Duration::from_secs(1));
        let ended = loop {
            tokio::select! {
                ended = &mut running => break ended,
                _ = sample.tick() => status.observe(),
            }
        };
        signals.set_attached(false);
        if signals.is_stopping() {
            return;
        }
        status.ended_unexpectedly();
        restarts.inc();
        if started.elapsed() >= STABLE_RUN {
            delay = RESTART_FIRST_DELAY;
        }
        let how = match ended {
            Err(error) if error.is_panic() => "panicked",
            _ => "ended",
        };
        tracing::error!(%subscription, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "the consume loop {how}; restarting it");
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = signals.stopping() => return,
        }
        delay = (delay * 2).min(RESTART_MAX_DELAY);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::atomic::AtomicU32;

    use async_trait::async_trait;

    use super::*;
    use crate::Cause;

    /// A handler that answers from a script, then `Ok`; it counts its calls.
    struct Scripted {
        answers: Mutex<VecDeque<HandlingError>>,
        calls: AtomicU32,
    }

    impl Scripted {
        fn new(answers: impl IntoIterator<Item = HandlingError>) -> Self {
            Self {
                answers: Mutex::new(answers.into_iter().collect()),
                calls: AtomicU32::new(0),
            }
        }
    }

    #[async_trait]
    impl MessageHandler for Scripted {
        async fn handle(&self, _: &Message) -> Result<(), HandlingError> {
            self.calls.fetch_add(1, Ordering::Relaxed);
            match self.answers.lock().expect("script").pop_front() {
                Some(error) => Err(error),
                None => Ok(()),
            }
        }
    }

    fn unavailable() -> HandlingError {
        HandlingError::Unavailable(Cause::msg("store unavailable"))
    }

    fn transient() -> HandlingError {
        HandlingError::Transient(Cause::msg("write conflict"))
    }

    const POLICY: RetryPolicy = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(5),
    };

    #[tokio::test(start_paused = true)]
    async fn a_message_waits_for_its_dependency_however_long_and_is_handled_once_it_answers() {
        // Ten minutes of a store that does not answer: far past the three attempts.
        let handler = Scripted::new((0..120).map(|_| unavailable()));
        let message = Message::new("eventCreated", "k", b"{}".to_vec());
        let started = Instant::now();
        let outcome = process(&handler, &message, POLICY, &HandlingMetrics::registered()).await;
        assert_eq!(outcome, Outcome::Ack);
        assert_eq!(handler.calls.load(Ordering::Relaxed), 121);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(5 * 100) && waited <= Duration::from_secs(10 * 121),
            "waited {waited:?}: the waits grow to the policy's longest delay and stay there"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn waits_for_a_dependency_do_not_count_against_the_attempts_but_transient_failures_do() {
        let message = Message::new("eventCreated", "k", b"{}".to_vec());
        // Two transient failures (of three attempts) among many waits: handled.
        let handler = Scripted::new([
            unavailable(),
            transient(),
            unavailable(),
            unavailable(),
            unavailable(),
            transient(),
            unavailable(),
        ]);
        assert_eq!(
            process(&handler, &message, POLICY, &HandlingMetrics::registered()).await,
            Outcome::Ack
        );
        // A third transient failure: dead-lettered, however many waits came between.
        let handler = Scripted::new([
            transient(),
            unavailable(),
            unavailable(),
            transient(),
            unavailable(),
            transient(),
        ]);
        match process(&handler, &message, POLICY, &HandlingMetrics::registered()).await {
            Outcome::DeadLetter(reason) => assert!(
                reason.starts_with("failed 3 times, last: ") && reason.contains("write conflict"),
                "{reason}"
            ),
            Outcome::Ack => panic!("three transient failures were not dead-lettered"),
        }
        assert_eq!(handler.calls.load(Ordering::Relaxed), 6);
        // Poison, even after waits: at once.
        let handler = Scripted::new([
            unavailable(),
            HandlingError::Poison(Cause::msg("no such event name")),
        ]);
        assert!(matches!(
            process(&handler, &message, POLICY, &HandlingMetrics::registered()).await,
            Outcome::DeadLetter(reason) if reason.starts_with("poison: ")
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_ends_is_restarted_with_backoff_and_reported_failing_until_it_runs_stably()
    {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = Arc::clone(&runs);
        let attached = Arc::new(AtomicBool::new(false));
        let consumer = Consumer::spawn("supervised", attached, move |signals| {
            let run = counted.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                if run <= 3 {
                    // Fails at once, three times (the third time by panicking).
                    assert!(run < 3, "the third run panics");
                    return;
                }
                signals.set_attached(true);
                signals.stopping().await;
            }
        });
        let status = consumer.status();
        assert_eq!(status.failing_for(), None, "healthy before any failure");
        // 200 + 400 + 800 ms of backoff: the fourth run starts after 1.4 s.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 4);
        assert_eq!(status.restarts(), 3);
        assert!(status.is_attached());
        assert!(status.failing_for().is_some(), "failing until a stable run");
        tokio::time::sleep(STABLE_RUN + Duration::from_secs(2)).await;
        assert_eq!(status.failing_for(), None, "healthy after a stable run");
        consumer.shutdown().await;
        assert_eq!(
            runs.load(Ordering::SeqCst),
            4,
            "a stopped consumer is not restarted"
        );
        assert!(!status.is_attached());
    }
}
