//! The transactional outbox survives a crash: the booking service stores bookings while its relay is
//! off (`OUTBOX_RELAY=off`, the fault-injection setting that simulates dying between the write and the
//! publish), is killed with SIGKILL, and once restarted publishes every stored booking's `eventBooked`.

use std::collections::BTreeSet;
use std::time::Duration;

use myevents_broker::{EventPublisher, EventSubscriber, Message, Subscription};
use myevents_domain::id::EventId;
use myevents_domain::messages::{DomainEvent, EventCreated};
use myevents_testkit::{
    Answer, Recorder, ServiceProcess, amqp_url, eventually, mongo_url, rabbitmq_broker_on, unique,
    unique_database,
};
use reqwest::{Client, StatusCode};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn bookings_stored_before_a_crash_are_announced_after_the_restart() {
    let exchange = unique("events");
    let broker = rabbitmq_broker_on(&exchange);
    let observer = Subscription::new(unique("observer"), &["eventBooked"]);
    broker.declare(&observer).await.expect("declare observer");
    let env = vec![
        ("BROKER_KIND", "rabbitmq".to_owned()),
        ("AMQP_BROKER_URL", amqp_url()),
        ("AMQP_EXCHANGE", exchange),
        ("BOOKING_QUEUE", unique("booking")),
        ("EVENTS_QUEUE", unique("events-service")),
        ("AMQP_QUEUE_EXPIRES", "600".to_owned()),
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo_url()),
        ("MONGO_DATABASE", unique_database()),
    ];
    let mut crashing_env = env.clone();
    crashing_env.push(("OUTBOX_RELAY", "off".to_owned()));
    let service = ServiceProcess::start("booking-service", &crashing_env).await;

    // The event service's announcement, as it would publish it.
    let event = EventId::generate();
    let created = DomainEvent::EventCreated(EventCreated {
        id: event,
        name: "opera aida".to_owned(),
        location_id: None,
        start_date: chrono::DateTime::from_timestamp(1_768_000_000, 0).expect("time"),
        end_date: chrono::DateTime::from_timestamp(1_768_007_200, 0).expect("time"),
        capacity: Some(10),
        hall: None,
        location_name: None,
    });
    broker
        .publish(&Message::new(
            created.name(),
            created.key(),
            created.to_json(),
        ))
        .await
        .expect("publish eventCreated");

    let client = Client::new();
    let url = format!("{}/events/{event}/bookings", service.url());
    let known = eventually(WAIT, || async {
        client
            .get(&url)
            .send()
            .await
            .is_ok_and(|r| r.status() == StatusCode::OK)
    })
    .await;
    assert!(known, "the booking service learned of the event");
    let mut stored = BTreeSet::new();
    for user in ["alice", "bob", "carol"] {
        let answer = Answer::read(
            client
                .post(&url)
                .header("x-user-id", user)
                .body(r#"{"seats":2}"#)
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        stored.insert(answer.body["ID"].as_str().expect("ID").to_owned());
    }
    service.kill().await;

    let (recorder, mut published) = Recorder::new();
    let _observer = broker
        .subscribe(&observer, recorder)
        .await
        .expect("observe");
    let restarted = ServiceProcess::start("booking-service", &env).await;
    let mut announced = BTreeSet::new();
    while announced.len() < stored.len() {
        let message = published.next(WAIT).await;
        let body: serde_json::Value = serde_json::from_slice(&message.payload).expect("json");
        assert_eq!(body["eventId"], event.to_string());
        announced.insert(body["bookingId"].as_str().expect("bookingId").to_owned());
    }
    assert_eq!(announced, stored);
    restarted.kill().await;
}
