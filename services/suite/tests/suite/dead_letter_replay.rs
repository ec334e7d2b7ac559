//! `booking-service dead-letters replay` over the real RabbitMQ: an `eventCreated` that a broken
//! consumer dead-lettered is published again by the command, and the (fixed) booking service then
//! learns of the event; a second replay finds nothing left.

use myevents_broker::Cause;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use myevents_broker::{EventSubscriber, HandlingError, Message, MessageHandler, Subscription};
use myevents_testkit::{
    ServiceProcess, amqp_url, announce_event, binary_path, eventually, eventually_answers,
    rabbitmq_broker_on, unique,
};
use reqwest::StatusCode;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A consumer version that cannot handle anything.
#[derive(Default)]
struct Broken {
    calls: AtomicUsize,
}

#[async_trait]
impl MessageHandler for Broken {
    async fn handle(&self, _message: &Message) -> Result<(), HandlingError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(HandlingError::Poison(Cause::msg(
            "this version cannot read it".to_owned(),
        )))
    }
}

fn replay(env: &[(&str, String)]) -> Value {
    let output = std::process::Command::new(binary_path("booking-service"))
        .args(["dead-letters", "replay", "--idle-seconds", "2"])
        .env("AUTH_MODE", "off")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("LOG_FORMAT", "json")
        .output()
        .expect("run the replay command");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "replay failed: {stdout}");
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line.get("replayed").is_some())
        .unwrap_or_else(|| panic!("no report in {stdout}"))
}

#[tokio::test]
async fn a_dead_lettered_event_created_is_replayed_by_the_command_and_then_handled() {
    let exchange = unique("events");
    let queue = unique("booking");
    let broker = rabbitmq_broker_on(&exchange);
    let subscription = Subscription::new(queue.clone(), &["eventCreated"]);
    broker.declare(&subscription).await.expect("declare");
    let broken = Arc::new(Broken::default());
    let consumer = broker
        .subscribe(
            &subscription,
            Arc::clone(&broken) as Arc<dyn MessageHandler>,
        )
        .await
        .expect("subscribe");
    // As the event service announces an event created with authentication off.
    let event = announce_event(&broker, 5, "anonymous").await;
    assert!(
        eventually(WAIT, || async { broken.calls.load(Ordering::SeqCst) >= 1 }).await,
        "the broken consumer saw the message"
    );
    consumer.shutdown().await;

    let env = vec![
        ("BROKER_KIND", "rabbitmq".to_owned()),
        ("AMQP_BROKER_URL", amqp_url()),
        ("AMQP_EXCHANGE", exchange),
        ("BOOKING_QUEUE", queue),
        // Every service declares every subscriber's queue: the event service's too, under a name
        // of the test's own (the default one belongs to whoever runs the services on this broker).
        ("EVENTS_QUEUE", unique("events-service")),
        ("AMQP_QUEUE_EXPIRES", "600".to_owned()),
        ("STORE_KIND", "memory".to_owned()),
    ];
    let report = replay(&env);
    assert_eq!(report["replayed"], 1, "{report}");
    assert_eq!(report["failed_again"], serde_json::json!([]));

    // The fixed service consumes the replayed message from its queue.
    let service = ServiceProcess::start("booking-service", &env).await;
    let url = format!("{}/events/{event}/bookings", service.url());
    assert!(
        eventually_answers(&url, StatusCode::OK, WAIT).await,
        "the booking service learned of the replayed event"
    );
    service.kill().await;

    assert_eq!(replay(&env)["replayed"], 0);
}
