//! A RabbitMQ node lost for good: a three-node cluster of the test's own (quorum queues, the
//! default; `AMQP_BROKER_URL` naming every node), both service binaries over it, 300 keyed
//! one-seat bookings from 10 clients, and the node leading the booking service's queue killed
//! (SIGKILL) after the first 100. At the end: every key answered 201 is a stored booking and no
//! other is (0 lost on the HTTP side, 0 oversold); the event service's `SeatsAvailable` is exactly
//! the capacity minus the bookings (every `eventBooked` applied once: none lost with the node, none
//! applied twice). The figures, and the longest the event service's count stood still after the
//! kill while bookings were unseen, are printed (BENCHMARKS.md keeps them).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use myevents_testkit::{
    RabbitMqCluster, ServiceProcess, create_event_across, eventually, get_json, post_json, unique,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const CAPACITY: i64 = 400;
const KEYS: usize = 300;
const CLIENTS: usize = 10;
const KILL_AFTER: usize = 100;
const WAIT: Duration = Duration::from_secs(120);

/// Books one seat of `event` under idempotency key `key`; the booking id when answered 201.
async fn book(client: &Client, base: &str, event: &str, key: &str) -> Option<String> {
    let answer = client
        .post(format!("{base}/events/{event}/bookings"))
        .header("x-user-id", key)
        .header("idempotency-key", key)
        .json(&json!({"seats": 1}))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .ok()?;
    if answer.status() != StatusCode::CREATED {
        return None;
    }
    let body: Value = answer.json().await.ok()?;
    body["ID"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bookings_survive_the_loss_of_the_node_leading_the_booking_queue() {
    let formed = Instant::now();
    let cluster = RabbitMqCluster::start(3).await;
    let formed = formed.elapsed();
    let (booking_queue, events_queue) = (unique("booking"), unique("events-service"));
    let env = vec![
        ("BROKER_KIND", "rabbitmq".to_owned()),
        ("AMQP_BROKER_URL", cluster.urls()),
        ("AMQP_EXCHANGE", unique("events")),
        ("BOOKING_QUEUE", booking_queue.clone()),
        ("EVENTS_QUEUE", events_queue.clone()),
        ("STORE_KIND", "memory".to_owned()),
    ];
    let bookings = ServiceProcess::start("booking-service", &env).await;
    let events = ServiceProcess::start("event-service", &env).await;
    let client = Client::new();
    let location: Value = post_json(
        &client,
        format!("{}/locations", events.url()),
        &json!({"Name":"Arena","Halls":[{"name":"Main","capacity":CAPACITY}]}),
    )
    .await;
    let event = create_event_across(
        &client,
        &events,
        &bookings,
        &json!({"Name":"cluster","StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
            "Hall":"Main","Location":{"ID":location["ID"]}}),
        WAIT,
    )
    .await;
    let event_url = format!("{}/events/{event}", events.url());
    for queue in [&booking_queue, &events_queue] {
        assert_eq!(
            cluster.members_of(queue, 0).await,
            Some(3),
            "{queue} is replicated on every node"
        );
        // The test is about a healthy cluster losing a node: every member running first (on a
        // loaded machine a follower's Raft member can start seconds after the declaration).
        assert!(
            eventually(WAIT, || async {
                cluster.online_members_of(queue, 0).await == Some(3)
            })
            .await,
            "{queue}: not every member online within {WAIT:?}: {:?}",
            cluster.online_members_of(queue, 0).await
        );
    }
    let leader = cluster
        .leader_of(&booking_queue, 0)
        .await
        .expect("the booking queue has a leader");

    // The event service's count, every 100 ms.
    let samples: Arc<Mutex<Vec<(Instant, i64)>>> = Arc::default();
    let sampler = {
        let (client, url, samples) = (client.clone(), event_url.clone(), Arc::clone(&samples));
        tokio::spawn(async move {
            loop {
                if let Ok(answer) = client.get(&url).send().await
                    && let Ok(body) = answer.json::<Value>().await
                    && let Some(seats) = body["SeatsAvailable"].as_i64()
                {
                    samples
                        .lock()
                        .expect("samples")
                        .push((Instant::now(), seats));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let keys: Vec<String> = (0..KEYS).map(|i| format!("node-loss-{i:04}")).collect();
    let queue = Arc::new(Mutex::new(keys.clone()));
    let answered: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    let workers: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, base, event) = (client.clone(), bookings.url(), event.clone());
            let (queue, answered) = (Arc::clone(&queue), Arc::clone(&answered));
            tokio::spawn(async move {
                loop {
                    let Some(key) = queue.lock().expect("keys").pop() else {
                        return;
                    };
                    if let Some(id) = book(&client, &base, &event, &key).await {
                        answered.lock().expect("answered").insert(key, id);
                    }
                }
            })
        })
        .collect();
    assert!(
        eventually(WAIT, || async {
            answered.lock().expect("answered").len() >= KILL_AFTER
        })
        .await,
        "{KILL_AFTER} bookings answered before the kill"
    );
    cluster.kill(leader);
    let killed = Instant::now();
    for worker in workers {
        worker.await.expect("worker");
    }
    // A key without a 201 (its request broke) is sent again: the same key, the same booking.
    for key in &keys {
        if answered.lock().expect("answered").contains_key(key) {
            continue;
        }
        let id = book(&client, &bookings.url(), &event, key)
            .await
            .unwrap_or_else(|| panic!("{key} has no booking"));
        answered.lock().expect("answered").insert(key.clone(), id);
    }
    let answered = answered.lock().expect("answered").clone();

    let listing = format!("{}/events/{event}/bookings?limit=1000", bookings.url());
    let listed: BTreeMap<String, String> = get_json(&client, &listing)
        .await
        .as_array()
        .expect("array")
        .iter()
        .map(|b| {
            (
                b["UserID"].as_str().expect("UserID").to_owned(),
                b["ID"].as_str().expect("ID").to_owned(),
            )
        })
        .collect();
    let booked = i64::try_from(listed.len()).expect("count");
    let expected = CAPACITY - booked;
    let converged = eventually(WAIT, || async {
        get_json(&client, &event_url).await["SeatsAvailable"] == expected
    })
    .await;
    sampler.abort();
    let seats = get_json(&client, &event_url).await["SeatsAvailable"].clone();
    let samples = samples.lock().expect("samples").clone();
    let stalled = longest_stall_after(&samples, killed, expected);
    println!(
        "cluster formed in {:.1} s; node {} of 3 (leading {booking_queue}) killed after {KILL_AFTER} \
         bookings; {KEYS} keys sent, {} answered 201, {} stored; SeatsAvailable {seats} \
         (expected {expected}); the event service's count stood still for at most {:.1} s after \
         the kill",
        formed.as_secs_f64(),
        leader + 1,
        answered.len(),
        listed.len(),
        stalled.as_secs_f64(),
    );
    if !converged {
        println!("{}", cluster.report((leader + 1) % 3).await);
        for (name, service) in [("booking-service", &bookings), ("event-service", &events)] {
            let logs = service.logs.lock().expect("logs").clone();
            for line in logs.iter().filter(|l| !l.contains("\"INFO\"")) {
                println!("{name}: {line}");
            }
        }
    }
    assert_eq!(listed, answered, "stored bookings = keys answered 201");
    assert!(booked <= CAPACITY, "oversold: {booked} of {CAPACITY}");
    assert!(
        converged,
        "SeatsAvailable {seats}, not {expected}: eventBooked lost (above) or applied twice (below)"
    );
    events.kill().await;
    bookings.kill().await;
}

/// The longest time after `since` during which the sampled count did not move while it had not
/// reached `expected`.
fn longest_stall_after(samples: &[(Instant, i64)], since: Instant, expected: i64) -> Duration {
    let mut longest = Duration::ZERO;
    let mut still_since = since;
    let mut last = None;
    for &(at, seats) in samples.iter().filter(|(at, _)| *at >= since) {
        if last != Some(seats) || seats == expected {
            longest = longest.max(at - still_since);
            still_since = at;
            last = Some(seats);
        }
        if seats == expected {
            return longest;
        }
    }
    // Never reached: up to the last sample.
    let end = samples.last().map_or(since, |(at, _)| *at);
    longest.max(end.saturating_duration_since(still_since))
}
