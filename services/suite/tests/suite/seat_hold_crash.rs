//! A booking interrupted between its two writes (seats held, booking not stored) is finished once:
//! by the retry with the same idempotency key, or else by the reconciliation. Afterwards the booking
//! service's remaining seats are the capacity minus the seats of the stored bookings, and the event
//! service's `SeatsAvailable` says the same. Both binaries over RabbitMQ; the interruption is the
//! booking service's `FAULT_INJECTION`: on memory the request stops after its seat hold
//! (`drop-after-seat-hold`, a crash of that request the in-memory store survives), on MongoDB the
//! whole process aborts there (`crash-after-seat-hold`) and is started again.

use std::time::Duration;

use myevents_testkit::{
    Env, ServiceProcess, eventually, eventually_answers, get_json, listed_seats, mongo_env,
    post_json, rabbitmq_env_on, unique,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);
const CAPACITY: i64 = 10;
const SEATS: i64 = 2;

/// In-memory stores unless extended; reconciliation every second, of holds older than 2 s; keys
/// held 2 s by a request that died.
fn quick_reconciliation() -> Env {
    vec![
        ("STORE_KIND", "memory".to_owned()),
        // So that a request for more than the capacity is refused as sold out, telling what remains.
        ("MAX_SEATS_PER_BOOKING", "20".to_owned()),
        ("RECONCILE_INTERVAL", "1".to_owned()),
        ("RECONCILE_GRACE", "2".to_owned()),
        ("IDEMPOTENCY_LEASE", "2".to_owned()),
    ]
}

/// Creates an event of [`CAPACITY`] seats and waits until the booking service knows it.
async fn event(client: &Client, events: &ServiceProcess, bookings: &ServiceProcess) -> String {
    let created: Value = post_json(
        client,
        format!("{}/events", events.url()),
        &json!({"Name":"opera aida","StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
            "Capacity":CAPACITY,"Location":{"Name":"West Hall","Halls":[{"name":"A","capacity":CAPACITY}]}}),
    )
    .await;
    let id = created["ID"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_owned();
    let url = format!("{}/events/{id}/bookings", bookings.url());
    assert!(
        eventually_answers(&url, StatusCode::OK, WAIT).await,
        "the booking service learned of {id}"
    );
    id
}

/// `POST` a booking of [`SEATS`] seats under `key`: its status and body, or `None` without an answer.
async fn book(
    client: &Client,
    bookings: &str,
    event: &str,
    key: &str,
) -> Option<(StatusCode, Value)> {
    let response = client
        .post(format!("{bookings}/events/{event}/bookings"))
        .header("x-user-id", key)
        .header("idempotency-key", key)
        .json(&json!({"seats": SEATS}))
        .send()
        .await
        .ok()?;
    let status = response.status();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

/// Retries `key` until it is answered 201 (a key its dead request held answers 409 for the lease).
async fn book_until_created(client: &Client, bookings: &str, event: &str, key: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let answer = book(client, bookings, event, key).await;
        if let Some((StatusCode::CREATED, body)) = answer {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key}: last answer {answer:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The seats the booking service says remain: a request for more than the capacity is refused with
/// "… requested, N remain".
async fn remaining(client: &Client, bookings: &str, event: &str) -> i64 {
    let refused = client
        .post(format!("{bookings}/events/{event}/bookings"))
        .header("x-user-id", "probe")
        .json(&json!({"seats": CAPACITY + 1}))
        .send()
        .await
        .expect("answer");
    let body: Value = refused.json().await.expect("json");
    let detail = body["detail"].as_str().unwrap_or_default().to_owned();
    detail
        .split_whitespace()
        .rev()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no remaining seats in {body}"))
}

/// Waits until the booking service lists `bookings` bookings for the event, its remaining seats are
/// the capacity minus their seats, and the event service's `SeatsAvailable` agrees.
async fn assert_in_agreement(
    client: &Client,
    events: &ServiceProcess,
    bookings: &str,
    event: &str,
    expected: usize,
) {
    let listing = format!("{bookings}/events/{event}/bookings");
    let listed = eventually(WAIT, || async {
        get_json(client, &listing).await.as_array().map(Vec::len) == Some(expected)
    })
    .await;
    assert!(listed, "{}", get_json(client, &listing).await);
    let booked = listed_seats(client, &listing).await;
    assert_eq!(booked, SEATS * i64::try_from(expected).expect("count"));
    assert_eq!(remaining(client, bookings, event).await, CAPACITY - booked);
    let shown = format!("{}/events/{event}", events.url());
    let agrees = eventually(WAIT, || async {
        get_json(client, &shown).await["SeatsAvailable"].as_i64() == Some(CAPACITY - booked)
    })
    .await;
    assert!(agrees, "{}", get_json(client, &shown).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_memory_interrupted_bookings_are_finished_once_by_their_retry_or_the_reconciliation() {
    let mut env = rabbitmq_env_on(&unique("events"));
    env.extend(quick_reconciliation());
    let events = ServiceProcess::start("event-service", &env).await;
    env.push(("FAULT_INJECTION", "drop-after-seat-hold".to_owned()));
    let bookings = ServiceProcess::start("booking-service", &env).await;
    let client = Client::new();
    let event = event(&client, &events, &bookings).await;
    let url = bookings.url();
    for key in ["retried-1", "retried-2", "abandoned-1", "abandoned-2"] {
        let (status, body) = book(&client, &url, &event, key).await.expect("answer");
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{key}: {body}");
    }
    // Retried at once: the retry finds the hold and stores the booking without taking seats again.
    let first = book_until_created(&client, &url, &event, "retried-1").await;
    let second = book_until_created(&client, &url, &event, "retried-2").await;
    assert_ne!(first["ID"], second["ID"]);
    // The abandoned ones are finished by the reconciliation.
    assert_in_agreement(&client, &events, &url, &event, 4).await;
    // A late retry of an abandoned key answers the booking the reconciliation stored.
    let late = book_until_created(&client, &url, &event, "abandoned-1").await;
    assert_in_agreement(&client, &events, &url, &event, 4).await;
    assert!(late["ID"].is_string());
    assert!(bookings.logged("an interrupted booking was finished from its seat hold"));
    bookings.kill().await;
    events.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_mongodb_a_process_killed_between_the_two_writes_leaks_no_seat() {
    let mut env = rabbitmq_env_on(&unique("events"));
    env.extend(quick_reconciliation());
    let events = ServiceProcess::start("event-service", &env).await;
    env.extend(mongo_env());
    let mut crashing = env.clone();
    crashing.push(("FAULT_INJECTION", "crash-after-seat-hold".to_owned()));
    let client = Client::new();
    let mut bookings = ServiceProcess::start("booking-service", &crashing).await;
    let event = event(&client, &events, &bookings).await;
    for key in ["retried", "abandoned"] {
        let answer = book(&client, &bookings.url(), &event, key).await;
        assert!(answer.is_none(), "{key}: the process aborts: {answer:?}");
        bookings.kill().await;
        bookings = ServiceProcess::start("booking-service", &crashing).await;
    }
    bookings.kill().await;
    let bookings = ServiceProcess::start("booking-service", &env).await;
    let url = bookings.url();
    let retried = book_until_created(&client, &url, &event, "retried").await;
    assert_in_agreement(&client, &events, &url, &event, 2).await;
    let again = book_until_created(&client, &url, &event, "retried").await;
    assert_eq!(again["ID"], retried["ID"], "one booking per key");
    bookings.kill().await;
    events.kill().await;
}
