//! Publish and consume throughput of every broker adapter, printed as messages per second.
//!
//! ```text
//! cargo bench -p myevents-broker-kafka --bench throughput
//! ```
//!
//! Environment: `BENCH_MESSAGES` (default 20000), `BENCH_CONCURRENCY` (publishes in flight, default 64),
//! `BENCH_BROKERS` (comma-separated among `memory,rabbitmq,kafka`, default all three), and the servers of
//! the tests: `MYEVENTS_TEST_AMQP_URL`, `MYEVENTS_TEST_KAFKA_BROKERS`. Each adapter gets a fresh
//! exchange or topic. Publishing waits for every confirm / delivery report; consuming acknowledges or
//! commits each message after its (empty) handler ran, one message at a time, as the services do.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use myevents_broker::memory::InMemoryBroker;
use myevents_broker::rabbitmq::{RabbitMqBroker, RabbitMqConfig};
use myevents_broker::{
    EventPublisher, EventSubscriber, HandlingError, Message, MessageHandler, Subscription,
};
use myevents_broker_kafka::{KafkaBroker, KafkaConfig};
use tokio::sync::Notify;

struct Counter {
    seen: AtomicUsize,
    target: usize,
    done: Notify,
}

#[async_trait]
impl MessageHandler for Counter {
    async fn handle(&self, _message: &Message) -> Result<(), HandlingError> {
        if self.seen.fetch_add(1, Ordering::Relaxed) + 1 == self.target {
            self.done.notify_one();
        }
        Ok(())
    }
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-bench-{}", uuid::Uuid::now_v7().simple())
}

async fn measure(
    name: &str,
    publisher: Arc<dyn EventPublisher>,
    subscriber: Arc<dyn EventSubscriber>,
    messages: usize,
    concurrency: usize,
) {
    let subscription = Subscription::new(unique("bench"), &["eventBooked"]);
    subscriber.declare(&subscription).await.expect("declare");
    let payload = br#"{"eventId":"6b026ab2686c822a56b0fe36","userId":"bench","seats":1}"#.to_vec();
    // One warm-up message opens connections and creates topics outside the measurement.
    let warm_up = Message::new("eventBooked", "warm-up", payload.clone());
    publisher.publish(&warm_up).await.expect("publish");

    let started = Instant::now();
    futures_util::stream::iter(0..messages)
        .for_each_concurrent(concurrency, |i| {
            let publisher = Arc::clone(&publisher);
            let message = Message::new("eventBooked", format!("event-{}", i % 64), payload.clone());
            async move { publisher.publish(&message).await.expect("publish") }
        })
        .await;
    let publish = started.elapsed();

    let counter = Arc::new(Counter {
        seen: AtomicUsize::new(0),
        target: messages + 1,
        done: Notify::new(),
    });
    let started = Instant::now();
    let consumer = subscriber
        .subscribe(
            &subscription,
            Arc::clone(&counter) as Arc<dyn MessageHandler>,
        )
        .await
        .expect("subscribe");
    let finished = tokio::time::timeout(Duration::from_secs(600), counter.done.notified()).await;
    let consume = started.elapsed();
    consumer.shutdown().await;
    let _ = publisher.close().await;
    assert!(finished.is_ok(), "{name}: not every message was consumed");
    let rate = |d: Duration| format!("{:>9.0}", (messages + 1) as f64 / d.as_secs_f64());
    println!(
        "{name:<9} publish {} msg/s ({:>6.2} s)   consume {} msg/s ({:>6.2} s)   [{messages} messages, {concurrency} publishes in flight]",
        rate(publish),
        publish.as_secs_f64(),
        rate(consume),
        consume.as_secs_f64(),
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let messages: usize = env_or("BENCH_MESSAGES", "20000")
        .parse()
        .expect("BENCH_MESSAGES");
    let concurrency: usize = env_or("BENCH_CONCURRENCY", "64")
        .parse()
        .expect("BENCH_CONCURRENCY");
    let brokers = env_or("BENCH_BROKERS", "memory,rabbitmq,kafka");
    runtime.block_on(async {
        for broker in brokers.split(',') {
            match broker.trim() {
                "memory" => {
                    let b = InMemoryBroker::default();
                    measure(
                        "memory",
                        Arc::new(b.clone()),
                        Arc::new(b),
                        messages,
                        concurrency,
                    )
                    .await;
                }
                "rabbitmq" => {
                    let mut config = RabbitMqConfig::new(env_or(
                        "MYEVENTS_TEST_AMQP_URL",
                        "amqp://guest:guest@127.0.0.1:5672/%2f",
                    ));
                    config.exchange = unique("events");
                    config.queue_expires = Some(Duration::from_secs(600));
                    let b = RabbitMqBroker::new(config);
                    measure(
                        "rabbitmq",
                        Arc::new(b.clone()),
                        Arc::new(b),
                        messages,
                        concurrency,
                    )
                    .await;
                }
                "kafka" => {
                    let brokers = env_or("MYEVENTS_TEST_KAFKA_BROKERS", "127.0.0.1:9092");
                    let config = KafkaConfig::new(brokers.split(',').map(str::to_owned).collect())
                        .with_topic(unique("events"));
                    let b = KafkaBroker::new(config).expect("adapter");
                    measure(
                        "kafka",
                        Arc::new(b.clone()),
                        Arc::new(b),
                        messages,
                        concurrency,
                    )
                    .await;
                }
                other => panic!("unknown broker {other:?} in BENCH_BROKERS"),
            }
        }
    });
}
