//! The chaos run: 1,000 keyed one-seat bookings from 50 clients on a 300-seat hall, both binaries over
//! RabbitMQ and a MongoDB-wire server of the test's own (persistent storage), the booking service
//! SIGKILLed three times and the database once during the burst; then every key without a final
//! answer is retried. At the end:
//! - every key answered 201 is a stored booking (its id), and every stored booking's key was answered
//!   201; every other key ended with 409 sold out; no answer outside the documented ones;
//! - the booking service's remaining seats are the capacity minus the seats booked (none leaked);
//! - the event service's `SeatsAvailable` matches, and it applied each message id once (its log).
//!
//! Bounded in time (its nextest override stops it after 5 minutes; it takes 30 to 50 s, the
//! MongoDB-wire test server's write rate on persistent storage being the limit); the figures of the
//! run are printed. It once took 4 to 10 minutes: its short key lease (2 s) made every request's
//! lease renewal wait for a database connection that the request's own store call held, a
//! deadlock that only the request time-out (30 s) ended (see `contention.rs`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use myevents_testkit::{
    ServiceProcess, eventually, eventually_answers, free_port, get_json, post_json,
    rabbitmq_env_on, start_mongo_wire_server, unique, unique_database,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const CAPACITY: usize = 300;
const KEYS: usize = 1000;
const CLIENTS: usize = 50;
const WAIT: Duration = Duration::from_secs(60);

/// What one key was answered.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    /// No answer (the process died, or the connection broke).
    None,
    /// Status and problem `type` or booking id.
    Status(StatusCode, Value),
}

impl Answer {
    fn is_final(&self) -> bool {
        match self {
            Self::Status(StatusCode::CREATED, _) => true,
            Self::Status(StatusCode::CONFLICT, body) => is_sold_out(body),
            _ => false,
        }
    }
}

/// Whether a problem body says sold out (`urn:myevents:problem:sold-out`).
fn is_sold_out(body: &Value) -> bool {
    body["type"]
        .as_str()
        .is_some_and(|t| t.ends_with(":sold-out"))
}

async fn book(client: &Client, base: &str, event: &str, key: &str) -> Answer {
    let sent = client
        .post(format!("{base}/events/{event}/bookings"))
        .header("x-user-id", key)
        .header("idempotency-key", key)
        .json(&json!({"seats": 1}))
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let Ok(response) = sent else {
        return Answer::None;
    };
    let status = response.status();
    match response.json::<Value>().await {
        Ok(body) => Answer::Status(status, body),
        Err(_) => Answer::None,
    }
}

/// The documented answers of a booking POST under faults.
fn documented(answer: &Answer) -> bool {
    match answer {
        Answer::None => true,
        Answer::Status(status, body) => match *status {
            StatusCode::CREATED => body["ID"].is_string(),
            // Sold out, or the key is held by a request a killed process left (until its lease).
            StatusCode::CONFLICT => body["type"].is_string(),
            // The store is down, the service is at its limits, or the request was interrupted.
            StatusCode::SERVICE_UNAVAILABLE => body["status"] == 503,
            _ => false,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_bookings_survive_kills_of_the_service_and_the_database() {
    let started = Instant::now();
    let port = free_port();
    // Persistent storage (a killed server comes back with its data), in memory-backed /dev/shm
    // where there is one: the test is about faults, not about the disk's fsync rate.
    let shm = std::path::Path::new("/dev/shm");
    let directory = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let storage = directory.join(unique_database());
    let mut database = start_mongo_wire_server(port, &storage);
    let mongo = format!("mongodb://127.0.0.1:{port}");
    let mut env = rabbitmq_env_on(&unique("events"));
    env.extend([
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo.clone()),
        ("MONGO_SERVER_SELECTION_TIMEOUT", "2".to_owned()),
        ("IDEMPOTENCY_LEASE", "2".to_owned()),
        ("RECONCILE_INTERVAL", "1".to_owned()),
        ("RECONCILE_GRACE", "3".to_owned()),
    ]);
    let mut event_env = env.clone();
    event_env.push(("MONGO_DATABASE", unique_database()));
    let events = ServiceProcess::start("event-service", &event_env).await;
    env.push(("MONGO_DATABASE", unique_database()));
    let client = Client::new();
    let bookings = ServiceProcess::start("booking-service", &env).await;
    assert!(
        eventually_answers(&format!("{}/readyz", bookings.url()), StatusCode::OK, WAIT).await,
        "booking service ready"
    );
    let created: Value = post_json(
        &client,
        format!("{}/events", events.url()),
        &json!({"Name":"chaos","StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
            "Capacity":CAPACITY,"Location":{"Name":"Hall","Halls":[{"name":"A","capacity":CAPACITY}]}}),
    )
    .await;
    let event = created["ID"].as_str().expect("event id").to_owned();
    assert!(
        eventually_answers(
            &format!("{}/events/{event}/bookings", bookings.url()),
            StatusCode::OK,
            WAIT
        )
        .await,
        "the booking service learned of the event"
    );

    // The burst: 50 clients take keys from one queue; the service's address changes on restarts.
    let base = Arc::new(Mutex::new(bookings.url()));
    let keys: Vec<String> = (0..KEYS).map(|i| format!("fan-{i:04}")).collect();
    let queue = Arc::new(Mutex::new(keys.clone()));
    let answers: Arc<Mutex<BTreeMap<String, Vec<Answer>>>> = Arc::default();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, base, queue, answers) = (
                client.clone(),
                Arc::clone(&base),
                Arc::clone(&queue),
                Arc::clone(&answers),
            );
            let event = event.clone();
            tokio::spawn(async move {
                loop {
                    let Some(key) = queue.lock().expect("queue").pop() else {
                        return;
                    };
                    let url = base.lock().expect("base").clone();
                    let answer = book(&client, &url, &event, &key).await;
                    if answer == Answer::None {
                        // The service died: wait for its restart (a new address) before the next key.
                        let restarted = eventually(Duration::from_secs(2), || async {
                            *base.lock().expect("base") != url
                        });
                        restarted.await;
                    }
                    answers
                        .lock()
                        .expect("answers")
                        .entry(key)
                        .or_default()
                        .push(answer);
                }
            })
        })
        .collect();
    let mut bookings = bookings;
    let mut kills = 0;
    for round in 0..4 {
        tokio::time::sleep(Duration::from_secs(3)).await;
        if round == 2 {
            // The database, once: SIGKILL, then the same storage again.
            let _ = database.kill().await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            database = start_mongo_wire_server(port, &storage);
            continue;
        }
        bookings.kill().await;
        kills += 1;
        bookings = ServiceProcess::start("booking-service", &env).await;
        *base.lock().expect("base") = bookings.url();
    }
    for worker in workers {
        worker.await.expect("worker");
    }
    let burst_seconds = started.elapsed().as_secs_f64();

    // Every key without a final answer is retried until it has one.
    let url = bookings.url();
    let mut retried = 0;
    for key in &keys {
        let last = answers.lock().expect("answers")[key]
            .last()
            .cloned()
            .unwrap_or(Answer::None);
        if last.is_final() {
            continue;
        }
        retried += 1;
        let deadline = Instant::now() + WAIT;
        loop {
            let answer = book(&client, &url, &event, key).await;
            let done = answer.is_final();
            answers
                .lock()
                .expect("answers")
                .get_mut(key)
                .expect("key")
                .push(answer);
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "{key} has no final answer");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    let answers = answers.lock().expect("answers").clone();
    let unanswered = answers
        .values()
        .flatten()
        .filter(|a| **a == Answer::None)
        .count();
    let undocumented: Vec<&Answer> = answers
        .values()
        .flatten()
        .filter(|a| !documented(a))
        .collect();
    assert!(
        undocumented.is_empty(),
        "undocumented answers: {undocumented:?}"
    );
    let created_ids: BTreeMap<&String, String> = answers
        .iter()
        .filter_map(|(key, list)| match list.last() {
            Some(Answer::Status(StatusCode::CREATED, body)) => {
                Some((key, body["ID"].as_str().expect("ID").to_owned()))
            }
            _ => None,
        })
        .collect();
    // No key was ever answered 201 with one booking and later something else.
    for (key, list) in &answers {
        let ids: BTreeSet<&str> = list
            .iter()
            .filter_map(|a| match a {
                Answer::Status(StatusCode::CREATED, body) => body["ID"].as_str(),
                _ => None,
            })
            .collect();
        assert!(ids.len() <= 1, "{key} answered two bookings: {ids:?}");
        if !ids.is_empty() {
            assert!(created_ids.contains_key(key), "{key}: 201, then {list:?}");
        }
    }

    // The booking service settles (the reconciliation finishes what the kills interrupted).
    let listing = format!("{url}/events/{event}/bookings?limit=1000");
    let stored = |listed: &Value| -> BTreeMap<String, String> {
        listed
            .as_array()
            .expect("array")
            .iter()
            .map(|b| {
                (
                    b["UserID"].as_str().expect("UserID").to_owned(),
                    b["ID"].as_str().expect("ID").to_owned(),
                )
            })
            .collect()
    };
    let expected: BTreeMap<String, String> = created_ids
        .iter()
        .map(|(k, id)| ((*k).clone(), id.clone()))
        .collect();
    let settled = eventually(WAIT, || async {
        stored(&get_json(&client, &listing).await) == expected
    })
    .await;
    let listed = stored(&get_json(&client, &listing).await);
    let differing: Vec<_> = listed
        .keys()
        .chain(expected.keys())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .filter(|key| listed.get(*key) != expected.get(*key))
        .map(|key| (key, listed.get(key), answers.get(key)))
        .collect();
    assert!(
        settled,
        "stored bookings and keys answered 201 differ: {} stored, {} answered 201; \
         (key, stored booking, answers): {differing:?}",
        listed.len(),
        expected.len()
    );
    let booked = listed.len();
    assert_eq!(
        booked, CAPACITY,
        "the hall sells out: 1,000 buyers for 300 seats"
    );
    let probe = client
        .post(format!("{url}/events/{event}/bookings"))
        .header("x-user-id", "probe")
        .json(&json!({"seats": 1}))
        .send()
        .await
        .expect("probe");
    let body: Value = probe.json().await.expect("json");
    assert!(is_sold_out(&body), "{body}");
    let remaining_text = body["detail"].as_str().unwrap_or_default().to_owned();
    assert!(
        remaining_text.ends_with(", 0 remain"),
        "remaining seats = capacity - booked = 0: {remaining_text}"
    );
    let shown = format!("{}/events/{event}", events.url());
    let agrees = eventually(WAIT, || async {
        get_json(&client, &shown).await["SeatsAvailable"].as_i64() == Some(0)
    })
    .await;
    assert!(agrees, "{}", get_json(&client, &shown).await);
    // Each eventBooked applied once: the event service logged each message id as applied once,
    // 300 in all (SeatsAvailable alone would hide a double count at 0).
    let applied = eventually(WAIT, || async {
        applied_messages(&events).len() == CAPACITY
    })
    .await;
    let ids = applied_messages(&events);
    assert!(applied, "{} messages applied", ids.len());

    let final_created = created_ids.len();
    let sold_out = keys.len() - final_created;
    println!(
        "chaos run: {KEYS} keys, {CLIENTS} clients, capacity {CAPACITY}; {kills} SIGKILLs of the \
         booking service and 1 of the database in a {burst_seconds:.1} s burst; {unanswered} \
         requests unanswered, {retried} keys retried; {final_created} answered 201 = {booked} \
         stored, {sold_out} sold out; remaining 0; SeatsAvailable 0; {} eventBooked applied once \
         each; {:.1} s in all",
        ids.len(),
        started.elapsed().as_secs_f64()
    );
    bookings.kill().await;
    events.kill().await;
    let _ = database.kill().await;
    let _ = std::fs::remove_dir_all(&storage);
    let _ = std::fs::remove_file(&storage);
}

/// The ids of the messages the event service applied (not duplicates), from its log; panics on
/// an id applied twice.
fn applied_messages(events: &ServiceProcess) -> BTreeSet<String> {
    let mut applied = BTreeSet::new();
    for line in events.logs.lock().expect("logs").iter() {
        let Ok(json) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        if json["message"] == "booked seats recorded" && json["duplicate"] == false {
            let id = json["message_id"].as_str().unwrap_or_default().to_owned();
            assert!(applied.insert(id.clone()), "message {id} applied twice");
        }
    }
    applied
}
