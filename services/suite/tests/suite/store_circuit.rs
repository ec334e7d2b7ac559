//! The circuit breaker in front of MongoDB, under load: the booking service books steadily (four
//! clients, each booking with an idempotency key) while its MongoDB-wire server of the test's own is
//! killed. Once the circuit is open, every booking is answered 503 with `Retry-After` at once (p99
//! under 50 ms, where without the breaker each would wait out the 5 s server selection time-out);
//! after the server is back on the same storage, bookings succeed again within one probe interval
//! (`MONGO_HEARTBEAT_FREQUENCY`, 1 s here, plus the reconnection); and every request, retried with
//! its key until it has an answer, ends as exactly one stored booking: none lost, none doubled.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use myevents_booking_service::config::BookingServiceConfig;
use myevents_booking_service::{Application, Dependencies};
use myevents_broker::RetryPolicy;
use myevents_broker::memory::InMemoryBroker;
use myevents_host::HostConfig;
use myevents_messaging::broker::Broker;
use myevents_store::config::{MongoConfig, StoreConfig};
use myevents_testkit::{
    Answer, announce_event, eventually, free_port, get_json, start_mongo_wire_server,
    unique_database,
};
use reqwest::{Client, StatusCode};
use tokio::sync::Mutex;

const WAIT: Duration = Duration::from_secs(30);
const PROBE_INTERVAL: Duration = Duration::from_secs(1);
const CLIENTS: usize = 4;
const USER: &str = "circuit";
/// The booking service's dead-letter queue on the in-memory broker.
const DEAD_LETTERS: &str = "booking.dlq";

/// One booking attempt: its key, its status, how long the answer took.
#[derive(Debug, Clone)]
struct Attempt {
    key: String,
    status: StatusCode,
    took: Duration,
    at: Instant,
}

async fn book(client: &Client, url: &str, key: &str) -> (StatusCode, Duration) {
    let started = Instant::now();
    let status = client
        .post(url)
        .header("x-user-id", USER)
        .header("idempotency-key", key)
        .body(r#"{"seats":1}"#)
        .send()
        .await
        .map_or(StatusCode::BAD_GATEWAY, |r| r.status());
    (status, started.elapsed())
}

fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99).div_ceil(100) - 1]
}

/// Starts the booking service in process over MongoDB at `mongo` and `broker`; returns its URL.
async fn start_booking_service(mongo: MongoConfig, broker: &InMemoryBroker) -> String {
    let config = myevents_host::Config {
        host: HostConfig::ephemeral("booking"),
        service: BookingServiceConfig {
            max_seats_per_booking: 4,
            reconcile_every: Duration::from_secs(1),
            ..BookingServiceConfig::default()
        },
    };
    let deps = Dependencies::from_config(&StoreConfig::MongoDb(mongo), Broker::in_memory(broker))
        .await
        .expect("store");
    let app = Application::build(&config, deps).await.expect("build");
    let url = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    url
}

/// Books one seat until it is booked (at most [`WAIT`]), each attempt with a key of its own: an
/// answer below 500 is stored under its key and replayed to a retry with that key, so a 404 from
/// before the service learned of the event would be answered again for good. Panics with the last
/// answer's status when nothing was booked.
async fn book_warm_up(client: &Client, bookings: &str) {
    let last = Mutex::new(StatusCode::OK);
    let attempt = std::sync::atomic::AtomicU32::new(0);
    let booked = eventually(WAIT, || async {
        let key = format!("warm-up-{}", attempt.fetch_add(1, Ordering::Relaxed));
        let (status, _) = book(client, bookings, &key).await;
        *last.lock().await = status;
        status == StatusCode::CREATED
    })
    .await;
    assert!(
        booked,
        "the booking service never booked the event (last answer {})",
        last.lock().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_database_opens_the_circuit_and_its_return_closes_it_with_no_booking_lost() {
    let port = free_port();
    let storage = std::env::temp_dir().join(unique_database());
    let mut server = start_mongo_wire_server(port, &storage);

    let mut mongo = MongoConfig::new(format!("mongodb://127.0.0.1:{port}"), unique_database());
    mongo.heartbeat_frequency = PROBE_INTERVAL;
    let broker = InMemoryBroker::default();
    let url = start_booking_service(mongo, &broker).await;
    let client = Client::new();
    let event = announce_event(&broker, 100_000, USER).await;
    let bookings = format!("{url}/events/{event}/bookings");
    book_warm_up(&client, &bookings).await;

    // Load: CLIENTS clients, each booking one seat after the other, every request with a key.
    let attempts = Arc::new(Mutex::new(Vec::<Attempt>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for n in 0..CLIENTS {
        let (client, bookings, attempts, stop) = (
            client.clone(),
            bookings.clone(),
            Arc::clone(&attempts),
            Arc::clone(&stop),
        );
        load.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("client-{n}-{i}");
                let (status, took) = book(&client, &bookings, &key).await;
                attempts.lock().await.push(Attempt {
                    key,
                    status,
                    took,
                    at: Instant::now(),
                });
                i += 1;
                if status != StatusCode::CREATED {
                    // As a client honouring Retry-After would, without waiting its 5 s.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    server.kill().await.expect("kill the database");
    let killed = Instant::now();
    let opened = eventually(WAIT, || async {
        get_json(&client, format!("{url}/readyz")).await["checks"]["store"]
            .as_str()
            .is_some_and(|store| {
                store.contains("circuit open") || store.contains("circuit half-open")
            })
    })
    .await;
    assert!(opened, "the circuit did not open");
    let open_since = Instant::now();
    // Requests that passed the circuit before it opened wait out the server selection time-out (5 s);
    // those after it must not.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let while_open: Vec<Attempt> = attempts
        .lock()
        .await
        .iter()
        .filter(|a| a.at > open_since + Duration::from_millis(100) && a.at - a.took > open_since)
        .cloned()
        .collect();
    assert!(
        while_open.len() >= 20,
        "too few requests while the circuit was open: {}",
        while_open.len()
    );
    assert!(
        while_open
            .iter()
            .all(|a| a.status == StatusCode::SERVICE_UNAVAILABLE),
        "not every request failed with 503 while the circuit was open: {:?}",
        while_open.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let fail_fast = p99(while_open.iter().map(|a| a.took).collect());
    assert!(
        fail_fast < Duration::from_millis(50),
        "503s while open: p99 {fail_fast:?} (killed {:?} before)",
        open_since - killed
    );

    let _server = start_mongo_wire_server(port, &storage);
    let listening = eventually(WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    assert!(listening, "the database did not come back");
    let back = Instant::now();
    let recovered = eventually(WAIT, || async {
        attempts
            .lock()
            .await
            .iter()
            .any(|a| a.at > back && a.status == StatusCode::CREATED)
    })
    .await;
    let recovery = back.elapsed();
    assert!(recovered, "bookings never succeeded again");
    assert!(
        recovery <= PROBE_INTERVAL + Duration::from_secs(2),
        "bookings succeeded again {recovery:?} after the database was back (probe interval {PROBE_INTERVAL:?})"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    for client in load {
        client.await.expect("load client");
    }

    // Every key without a booking yet retried until it has one: one booking per key, each stored
    // once.
    let attempts = attempts.lock().await.clone();
    let mut booked = std::collections::BTreeSet::new();
    for attempt in &attempts {
        if attempt.status == StatusCode::CREATED {
            booked.insert(attempt.key.clone());
            continue;
        }
        let answer = eventually(WAIT, || async {
            let (status, _) = book(&client, &bookings, &attempt.key).await;
            status == StatusCode::CREATED
        })
        .await;
        assert!(answer, "key {} never got its booking", attempt.key);
        booked.insert(attempt.key.clone());
    }
    let mut stored = 0;
    let mut after = String::new();
    loop {
        let page = Answer::read(
            client
                .get(format!("{url}/users/{USER}/bookings?limit=1000{after}"))
                .header("x-user-id", USER)
                .send()
                .await
                .expect("request"),
        )
        .await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let page = page.body.as_array().expect("array").clone();
        stored += page.len();
        match page.last() {
            Some(last) => after = format!("&after={}", last["ID"].as_str().expect("ID")),
            None => break,
        }
    }
    // The warm-up booking, plus one per key.
    assert_eq!(
        stored,
        booked.len() + 1,
        "{} keys, {stored} stored bookings (with the warm-up's)",
        booked.len()
    );
    let _ = std::fs::remove_dir_all(&storage);
}

/// A database that comes up after the service, long after a message for it arrived: the message
/// waits for it instead of being dead-lettered once its retries are spent (a store outage is not
/// the message's fault), and the event it announces is bookable once the database answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_waits_for_a_database_that_starts_after_the_service() {
    let port = free_port();
    let mut mongo = MongoConfig::new(format!("mongodb://127.0.0.1:{port}"), unique_database());
    mongo.heartbeat_frequency = PROBE_INTERVAL;
    mongo.server_selection_timeout = Duration::from_secs(1);
    // Retries spent within half a second: without the wait, the message is dead-lettered long
    // before the database is started.
    let policy = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    };
    let broker = InMemoryBroker::with_retry_policy(policy);
    let url = start_booking_service(mongo, &broker).await;
    let event = announce_event(&broker, 100_000, USER).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        broker.ready_count(DEAD_LETTERS),
        0,
        "the message was dead-lettered while the database was down"
    );

    let storage = std::env::temp_dir().join(unique_database());
    let _server = start_mongo_wire_server(port, &storage);
    let client = Client::new();
    book_warm_up(&client, &format!("{url}/events/{event}/bookings")).await;
    assert_eq!(
        broker.ready_count(DEAD_LETTERS),
        0,
        "a message was dead-lettered"
    );
    let _ = std::fs::remove_dir_all(&storage);
}
