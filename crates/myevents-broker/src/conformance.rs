//! The broker conformance suite: the checks every adapter must pass, the in-memory one and the real
//! ones against real servers. Each check gets a [`BrokerUnderTest`] whose names (exchange, topic,
//! subscriptions) are unique to it. [`broker_conformance!`](crate::broker_conformance) expands to one
//! `#[tokio::test]` per check:
//!
//! ```no_run
//! use std::sync::Arc;
//! use myevents_broker::conformance::BrokerUnderTest;
//! use myevents_broker::memory::InMemoryBroker;
//!
//! myevents_broker::broker_conformance!(async {
//!     let broker = InMemoryBroker::default();
//!     BrokerUnderTest::new(Arc::new(broker.clone()), Arc::new(broker))
//! });
//! ```

use crate::Cause;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{Mutex, mpsc};

use crate::{
    Consumer, DEAD_LETTER_REASON_HEADER, EventPublisher, EventSubscriber, HandlingError, Message,
    MessageHandler, Subscription,
};

/// How long a check waits for a message before it fails.
pub const WAIT: Duration = Duration::from_secs(20);

/// An adapter prepared for one check.
pub struct BrokerUnderTest {
    /// Its publisher.
    pub publisher: Arc<dyn EventPublisher>,
    /// Its subscriber.
    pub subscriber: Arc<dyn EventSubscriber>,
    /// A prefix unique to this check, for subscription names.
    pub unique: String,
}

impl BrokerUnderTest {
    /// Wraps an adapter with a fresh unique prefix.
    pub fn new(publisher: Arc<dyn EventPublisher>, subscriber: Arc<dyn EventSubscriber>) -> Self {
        Self {
            publisher,
            subscriber,
            unique: format!("test-{}", uuid::Uuid::now_v7().simple()),
        }
    }

    fn subscription(&self, suffix: &str, names: &[&str]) -> Subscription {
        Subscription::new(format!("{}-{suffix}", self.unique), names)
    }
}

/// A handler that passes every message on to a channel, optionally failing some first.
struct Recorder {
    sender: mpsc::UnboundedSender<Message>,
    /// Payloads answered with `Poison`.
    poison: Vec<u8>,
    /// Transient failures to give before succeeding, for every message.
    transient_failures: u32,
    failures_so_far: AtomicU32,
    /// Time each message takes.
    work: Duration,
}

impl Recorder {
    fn new() -> (Arc<Self>, mpsc::UnboundedReceiver<Message>) {
        Self::configured(Vec::new(), 0, Duration::ZERO)
    }

    fn configured(
        poison: Vec<u8>,
        transient_failures: u32,
        work: Duration,
    ) -> (Arc<Self>, mpsc::UnboundedReceiver<Message>) {
        let (sender, receiver) = mpsc::unbounded_channel();
        let recorder = Self {
            sender,
            poison,
            transient_failures,
            failures_so_far: AtomicU32::new(0),
            work,
        };
        (Arc::new(recorder), receiver)
    }
}

#[async_trait]
impl MessageHandler for Recorder {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        if !self.poison.is_empty() && message.payload == self.poison {
            return Err(HandlingError::Poison(Cause::msg("test poison")));
        }
        if self.failures_so_far.fetch_add(1, Ordering::SeqCst) < self.transient_failures {
            return Err(HandlingError::Transient(Cause::msg("test failure")));
        }
        tokio::time::sleep(self.work).await;
        let _ = self.sender.send(message.clone());
        Ok(())
    }
}

/// A handler that never finishes: it reports each message it starts and then hangs.
struct Hanging {
    started: mpsc::UnboundedSender<Message>,
}

#[async_trait]
impl MessageHandler for Hanging {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        let _ = self.started.send(message.clone());
        std::future::pending::<()>().await;
        Ok(())
    }
}

async fn next(receiver: &mut mpsc::UnboundedReceiver<Message>, what: &str) -> Message {
    match tokio::time::timeout(WAIT, receiver.recv()).await {
        Ok(Some(message)) => message,
        Ok(None) => panic!("{what}: the handler is gone"),
        Err(_) => panic!("{what}: nothing arrived within {WAIT:?}"),
    }
}

async fn wait_attached(consumers: &[&Consumer]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !consumers.iter().all(|c| c.is_attached()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "consumers did not attach within {WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn message(name: &str, key: &str, payload: &str) -> Message {
    Message::new(name, key, payload.as_bytes().to_vec())
}

/// A published message arrives whole: id, name, key, time, payload and headers.
pub async fn round_trip(broker: BrokerUnderTest) {
    let sub = broker.subscription("round-trip", &["eventCreated"]);
    let (recorder, mut received) = Recorder::new();
    let consumer = broker
        .subscriber
        .subscribe(&sub, recorder)
        .await
        .expect("subscribe");
    wait_attached(&[&consumer]).await;
    let sent = message("eventCreated", "6b026ab2686c822a56b0fe36", r#"{"id":"x"}"#).with_header(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    );
    broker.publisher.publish(&sent).await.expect("publish");
    let got = next(&mut received, "round trip").await;
    assert_eq!(got, sent);
    consumer.shutdown().await;
}

/// Only the subscribed event names arrive.
pub async fn delivers_only_subscribed_names(broker: BrokerUnderTest) {
    let sub = broker.subscription("names", &["eventBooked"]);
    broker.subscriber.declare(&sub).await.expect("declare");
    broker
        .publisher
        .publish(&message("eventCreated", "k", "{}"))
        .await
        .expect("publish");
    let wanted = message("eventBooked", "k", "{}");
    broker.publisher.publish(&wanted).await.expect("publish");
    let (recorder, mut received) = Recorder::new();
    let consumer = broker
        .subscriber
        .subscribe(&sub, recorder)
        .await
        .expect("subscribe");
    assert_eq!(next(&mut received, "subscribed name").await.id, wanted.id);
    consumer.shutdown().await;
}

/// Consumes `sub` and checks that exactly `sent` arrives first, in its order.
async fn receives_in_order(broker: &BrokerUnderTest, sub: &Subscription, sent: &[Message]) {
    let (recorder, mut received) = Recorder::new();
    let consumer = broker
        .subscriber
        .subscribe(sub, recorder)
        .await
        .expect("subscribe");
    for expected in sent {
        assert_eq!(next(&mut received, "in order").await.id, expected.id);
    }
    consumer.shutdown().await;
}

/// Messages with one key arrive in the order they were published.
pub async fn keeps_order_per_key(broker: BrokerUnderTest) {
    let sub = broker.subscription("order", &["eventBooked"]);
    broker.subscriber.declare(&sub).await.expect("declare");
    let sent: Vec<Message> = (0..20)
        .map(|i| message("eventBooked", "one-event", &format!("{{\"n\":{i}}}")))
        .collect();
    for m in &sent {
        broker.publisher.publish(m).await.expect("publish");
    }
    receives_in_order(&broker, &sub, &sent).await;
}

/// A batch of 300 messages (confirms in flight together where the adapter pipelines) is confirmed
/// message by message and arrives whole, in order per key.
pub async fn publishes_a_batch_in_order(broker: BrokerUnderTest) {
    let sub = broker.subscription("batch", &["eventBooked"]);
    broker.subscriber.declare(&sub).await.expect("declare");
    let sent: Vec<Message> = (0..300)
        .map(|i| message("eventBooked", "one-event", &format!("{{\"n\":{i}}}")))
        .collect();
    let results = broker.publisher.publish_batch(&sent).await;
    assert_eq!(results.len(), sent.len());
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    receives_in_order(&broker, &sub, &sent).await;
}

/// A consumer started after the publish (the subscription declared before) still gets the message.
pub async fn keeps_messages_for_a_late_consumer(broker: BrokerUnderTest) {
    let sub = broker.subscription("late", &["eventCreated"]);
    broker.subscriber.declare(&sub).await.expect("declare");
    let sent = message("eventCreated", "k", "{}");
    broker.publisher.publish(&sent).await.expect("publish");
    let (recorder, mut received) = Recorder::new();
    let consumer = broker
        .subscriber
        .subscribe(&sub, recorder)
        .await
        .expect("subscribe");
    assert_eq!(next(&mut received, "late consumer").await.id, sent.id);
    consumer.shutdown().await;
}

/// A message whose consumer crashed before acknowledging it is delivered again.
pub async fn redelivers_after_a_crash(broker: BrokerUnderTest) {
    let sub = broker.subscription("crash", &["eventCreated"]);
    broker.subscriber.declare(&sub).await.expect("declare");
    let sent = message("eventCreated", "k", "{}");
    broker.publisher.publish(&sent).await.expect("publish");

    let (started, mut started_rx) = mpsc::unbounded_channel();
    let hanging = broker
        .subscriber
        .subscribe(&sub, Arc::new(Hanging { started }))
        .await
        .expect("subscribe");
    assert_eq!(next(&mut started_rx, "first delivery").await.id, sent.id);
    hanging.kill().await;

    let (recorder, mut received) = Recorder::new();
    let consumer = broker
        .subscriber
        .subscribe(&sub, recorder)
        .await
        .expect("subscribe");
    assert_eq!(next(&mut received, "redelivery").await.id, sent.id);
    consumer.shutdown().await;
}

/// A consumer stopped gracefully and started again resumes right after the last message it handled:
/// nothing handled is delivered again, nothing is skipped.
pub async fn resumes_after_the_last_handled_message(broker: BrokerUnderTest) {
    let sub = broker.subscription("resume", &["eventBooked"]);
    broker.subscriber.declare(&sub).await.expect("declare");
    let sent: Vec<Message> = (0..5)
        .map(|i| message("eventBooked", "one-event", &format!("{{\"n\":{i}}}")))
        .collect();
    for m in &sent[..3] {
        broker.publisher.publish(m).await.expect("publish");
    }
    let (recorder, mut received) = Recorder::new();
    let first = broker
        .subscriber
        .subscribe(&sub, recorder)
        .await
        .expect("subscribe");
    for expected in &sent[..3] {
        assert_eq!(next(&mut received, "before restart").await.id, expected.id);
    }
    first.shutdown().await;
    for m in &sent[3..] {
        broker.publisher.publish(m).await.expect("publish");
    }
    let (recorder, mut received) = Recorder::new();
    let second = broker
        .subscriber
        .subscribe(&sub, recorder)
        .await
        .expect("subscribe");
    for expected in &sent[3..] {
        assert_eq!(next(&mut received, "after restart").await.id, expected.id);
    }
    second.shutdown().await;
}

/// A poison message goes to the dead-letter queue with its reason; the next message is still handled.
pub async fn dead_letters_poison(broker: BrokerUnderTest) {
    let sub = broker.subscription("poison", &["eventCreated"]);
    broker.subscriber.declare(&sub).await.expect("declare");
    let poison = message("eventCreated", "k", "not json");
    let good = message("eventCreated", "k", "{}");
    broker.publisher.publish(&poison).await.expect("publish");
    broker.publisher.publish(&good).await.expect("publish");
    let (recorder, mut received) = Recorder::configured(b"not json".to_vec(), 0, Duration::ZERO);
    let consumer = broker
        .subscriber
        .subscribe(&sub, recorder)
        .await
        .expect("subscribe");
    assert_eq!(next(&mut received, "good message").await.id, good.id);

    let (dead, mut dead_rx) = Recorder::new();
    let dead_consumer = broker
        .subscriber
        .subscribe(&sub.dead_letters(), dead)
        .await
        .expect("subscribe to dead letters");
    let dead_letter = next(&mut dead_rx, "dead letter").await;
    assert_eq!(dead_letter.id, poison.id);
    assert_eq!(dead_letter.name, poison.name);
    assert_eq!(dead_letter.payload, poison.payload);
    let reason = dead_letter
        .headers
        .get(DEAD_LETTER_REASON_HEADER)
        .expect("reason header");
    assert!(reason.contains("test poison"), "reason: {reason}");
    consumer.shutdown().await;
    dead_consumer.shutdown().await;
}

/// A transient failure is retried and the message then handled, not dead-lettered.
pub async fn retries_transient_failures(broker: BrokerUnderTest) {
    let sub = broker.subscription("retry", &["eventCreated"]);
    broker.subscriber.declare(&sub).await.expect("declare");
    let sent = message("eventCreated", "k", "{}");
    broker.publisher.publish(&sent).await.expect("publish");
    let (recorder, mut received) = Recorder::configured(Vec::new(), 2, Duration::ZERO);
    let consumer = broker
        .subscriber
        .subscribe(&sub, recorder)
        .await
        .expect("subscribe");
    assert_eq!(next(&mut received, "after retries").await.id, sent.id);
    consumer.shutdown().await;
}

/// Two consumers of one subscription share its messages: each message is handled once, by one of them.
pub async fn shares_work_between_consumers(broker: BrokerUnderTest) {
    let sub = broker.subscription("shared", &["eventBooked"]);
    let (first, mut first_rx) = Recorder::configured(Vec::new(), 0, Duration::from_millis(20));
    let (second, mut second_rx) = Recorder::configured(Vec::new(), 0, Duration::from_millis(20));
    let a = broker
        .subscriber
        .subscribe(&sub, first)
        .await
        .expect("subscribe");
    let b = broker
        .subscriber
        .subscribe(&sub, second)
        .await
        .expect("subscribe");
    wait_attached(&[&a, &b]).await;
    let sent: Vec<Message> = (0..20)
        .map(|i| message("eventBooked", &format!("event-{i}"), "{}"))
        .collect();
    for m in &sent {
        broker.publisher.publish(m).await.expect("publish");
    }
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (mut from_a, mut from_b) = (0, 0);
    for _ in 0..sent.len() {
        let m = tokio::select! {
            Some(m) = first_rx.recv() => { from_a += 1; m }
            Some(m) = second_rx.recv() => { from_b += 1; m }
            () = tokio::time::sleep(WAIT) => panic!("shared: nothing arrived within {WAIT:?}"),
        };
        seen.lock().await.push(m.id);
    }
    let mut seen = seen.lock().await.clone();
    seen.sort();
    let mut expected: Vec<String> = sent.iter().map(|m| m.id.clone()).collect();
    expected.sort();
    assert_eq!(seen, expected, "every message exactly once");
    assert!(
        from_a > 0 && from_b > 0,
        "both consumers worked: {from_a} and {from_b}"
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// Expands to one test per check; the argument is an async expression giving a fresh
/// [`BrokerUnderTest`].
#[macro_export]
macro_rules! broker_conformance {
    ($make:expr) => {
        $crate::__broker_conformance_tests!($make;
            round_trip, delivers_only_subscribed_names, keeps_order_per_key,
            publishes_a_batch_in_order, keeps_messages_for_a_late_consumer, redelivers_after_a_crash,
            resumes_after_the_last_handled_message, dead_letters_poison,
            retries_transient_failures, shares_work_between_consumers);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __broker_conformance_tests {
    ($make:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let broker = $make.await;
                $crate::conformance::$check(broker).await;
            }
        )+
    };
}
