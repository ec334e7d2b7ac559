//! The transactional outbox survives a crash: the booking service stores bookings while its relay is
//! off (`OUTBOX_RELAY=off`, the fault-injection setting that simulates dying between the write and the
//! publish), is killed with SIGKILL, and once restarted publishes every stored booking's `eventBooked`;
//! the event service (a process of its own) counts each exactly once, even when the broker delivers
//! them again.

use std::collections::BTreeSet;
use std::time::Duration;

use myevents_broker::{EventPublisher, EventSubscriber, Subscription};
use myevents_domain::id::EventId;
use myevents_testkit::{
    Answer, Recorder, ServiceProcess, eventually, eventually_answers, rabbitmq_broker_on, unique,
    unique_database,
};
use myevents_testkit::{mongo_env, rabbitmq_env_on};
use reqwest::{Client, StatusCode};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn bookings_stored_before_a_crash_are_announced_after_the_restart() {
    let exchange = unique("events");
    let broker = rabbitmq_broker_on(&exchange);
    let observer = Subscription::new(unique("observer"), &["eventBooked"]);
    broker.declare(&observer).await.expect("declare observer");
    let mut env = rabbitmq_env_on(&exchange);
    env.extend(mongo_env());
    let mut crashing_env = env.clone();
    crashing_env.push(("OUTBOX_RELAY", "off".to_owned()));
    let service = ServiceProcess::start("booking-service", &crashing_env).await;
    let client = Client::new();
    let ready = format!("{}/readyz", service.url());
    assert!(
        eventually_answers(&ready, StatusCode::OK, WAIT).await,
        "the booking service became ready"
    );
    let mut event_env = env.clone();
    event_env.push(("MONGO_DATABASE", unique_database()));
    let events = ServiceProcess::start("event-service", &event_env).await;

    // An event of 10 seats, created on the event service.
    let created = Answer::read(
        client
            .post(format!("{}/events", events.url()))
            .json(
                &serde_json::json!({"Name":"opera aida","StartDate":1_768_000_000_i64,
                "EndDate":1_768_007_200_i64,"Capacity":10,
                "Location":{"Name":"West Hall","Halls":[{"name":"A","capacity":10}]}}),
            )
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let event = EventId::parse(created.body["ID"].as_str().expect("ID")).expect("id");
    let available = || {
        let request = client.get(format!("{}/events/{event}", events.url()));
        async move {
            Answer::read(request.send().await.expect("request"))
                .await
                .body["SeatsAvailable"]
                .as_i64()
                .expect("SeatsAvailable")
        }
    };

    let url = format!("{}/events/{event}/bookings", service.url());
    let known = eventually_answers(&url, StatusCode::OK, WAIT).await;
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
    // The backlog gauge counts what waits, from the store (the relay that used to set it is off).
    let metrics = format!("{}/metrics", service.metrics_url());
    let pending = || async {
        myevents_testkit::metric_value(
            &myevents_testkit::scrape(&metrics).await,
            "myevents_outbox_pending{service=\"booking-service\"}",
        )
    };
    assert!(
        eventually(WAIT, || async { pending().await == Some(3.0) }).await,
        "myevents_outbox_pending is {:?}",
        pending().await
    );
    service.kill().await;

    let (recorder, mut published) = Recorder::new();
    let _observer = broker
        .subscribe(&observer, recorder)
        .await
        .expect("observe");
    let restarted = ServiceProcess::start("booking-service", &env).await;
    let mut announced = BTreeSet::new();
    let mut recorded = Vec::new();
    while announced.len() < stored.len() {
        let message = published.next(WAIT).await;
        recorded.push(message.clone());
        let body: serde_json::Value = serde_json::from_slice(&message.payload).expect("json");
        assert_eq!(body["eventId"], event.to_string());
        announced.insert(body["bookingId"].as_str().expect("bookingId").to_owned());
    }
    assert_eq!(announced, stored);

    // The event service counts the three bookings (6 seats) once.
    assert!(
        eventually(WAIT, || async { available().await == 4 }).await,
        "SeatsAvailable reached 4, is {}",
        available().await
    );
    // The broker delivers them all again (same message ids): nothing changes. A later booking, whose
    // message is queued behind the repeats, shows they were handled first.
    for message in &recorded {
        broker.publish(message).await.expect("publish again");
    }
    let later = client
        .post(format!("{}/events/{event}/bookings", restarted.url()))
        .header("x-user-id", "dave")
        .body(r#"{"seats":1}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(later.status(), StatusCode::CREATED);
    assert!(
        eventually(WAIT, || async { available().await == 3 }).await,
        "SeatsAvailable reached 3, is {}",
        available().await
    );
    events.kill().await;
    restarted.kill().await;
}
