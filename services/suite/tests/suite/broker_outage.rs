//! A RabbitMQ outage while bookings go on: the broker's application is stopped
//! (`rabbitmqctl stop_app`) for 10 seconds under the two service binaries. Bookings keep succeeding
//! (they are stored with their messages in the outbox), both services report not ready while the
//! broker is gone and ready again once it is back, without a restart, and afterwards every booking has
//! reached the event service exactly once: its `SeatsAvailable` equals the booking service's
//! remaining seats.
//!
//! It stops the one RabbitMQ every other test shares, so it is ignored in the normal run;
//! `scripts/test.sh` runs it on its own after the rest (`--run-ignored only`).

use std::process::Command;
use std::time::{Duration, Instant};

use myevents_testkit::{ServiceProcess, eventually, eventually_answers, unique_database};
use myevents_testkit::{create_event_across, get_json};
use myevents_testkit::{listed_seats, mongo_env, rabbitmq_env};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
const OUTAGE: Duration = Duration::from_secs(10);

fn rabbitmqctl(command: &str) {
    let status = Command::new("rabbitmqctl")
        .arg(command)
        .status()
        .unwrap_or_else(|e| panic!("rabbitmqctl {command}: {e}"));
    assert!(status.success(), "rabbitmqctl {command} failed: {status}");
}

/// Starts the RabbitMQ application again when dropped, even when the test fails half-way.
struct Outage;

impl Outage {
    fn begin() -> Self {
        rabbitmqctl("stop_app");
        Self
    }
}

impl Drop for Outage {
    fn drop(&mut self) {
        rabbitmqctl("start_app");
        let _ = Command::new("rabbitmqctl")
            .args(["await_startup", "--timeout", "60"])
            .status();
    }
}

async fn status(client: &Client, url: &str) -> Option<StatusCode> {
    client.get(url).send().await.ok().map(|r| r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "stops the shared RabbitMQ; scripts/test.sh runs it alone"]
async fn rabbitmq_outage_loses_no_booking_and_applies_none_twice() {
    let mut env = rabbitmq_env();
    env.extend(mongo_env());
    env.extend([("MAX_SEATS_PER_BOOKING", "4".to_owned())]);
    let bookings = ServiceProcess::start("booking-service", &env).await;
    env.push(("MONGO_DATABASE", unique_database()));
    let client = Client::new();
    let booking_ready = format!("{}/readyz", bookings.url());
    assert!(
        eventually_answers(&booking_ready, StatusCode::OK, WAIT).await,
        "the booking service became ready"
    );
    let events = ServiceProcess::start("event-service", &env).await;
    let event_ready = format!("{}/readyz", events.url());
    assert!(
        eventually_answers(&event_ready, StatusCode::OK, WAIT).await,
        "the event service became ready"
    );

    let event_id = create_event_across(
        &client,
        &events,
        &bookings,
        &json!({"Name":"festival","StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
            "Capacity":5000,"Location":{"Name":"Park","Halls":[{"name":"Field","capacity":5000}]}}),
        WAIT,
    )
    .await;
    let bookings_url = format!("{}/events/{event_id}/bookings", bookings.url());

    let mut booked = 0_i64;
    let mut count = 0_u32;
    let mut book = || {
        count += 1;
        let seats = i64::from(count % 4 + 1);
        let request = client
            .post(&bookings_url)
            .header("x-user-id", format!("fan{}", count % 7))
            .json(&json!({ "seats": seats }));
        async move {
            let response = request.send().await.expect("request");
            assert_eq!(response.status(), StatusCode::CREATED, "booking refused");
            seats
        }
    };
    for _ in 0..20 {
        booked += book().await;
    }

    let outage = Outage::begin();
    let stopped_at = Instant::now();
    let mut saw_not_ready = (false, false);
    while stopped_at.elapsed() < OUTAGE {
        booked += book().await;
        if status(&client, &booking_ready).await == Some(StatusCode::SERVICE_UNAVAILABLE) {
            saw_not_ready.0 = true;
        }
        if status(&client, &event_ready).await == Some(StatusCode::SERVICE_UNAVAILABLE) {
            saw_not_ready.1 = true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        saw_not_ready,
        (true, true),
        "both services reported not ready without the broker"
    );
    drop(outage);

    for _ in 0..20 {
        booked += book().await;
    }
    for url in [&booking_ready, &event_ready] {
        assert!(
            eventually_answers(url, StatusCode::OK, WAIT).await,
            "{url} ready again after the broker returned"
        );
    }

    let stored = listed_seats(&client, &format!("{bookings_url}?limit=1000")).await;
    assert_eq!(stored, booked, "every acknowledged booking is stored");

    let event_url = format!("{}/events/{event_id}", events.url());
    let available = || async {
        let shown: Value = get_json(&client, &event_url).await;
        shown["SeatsAvailable"].as_i64().expect("SeatsAvailable")
    };
    let expected = 5000 - booked;
    assert!(
        eventually(WAIT, || async { available().await == expected }).await,
        "SeatsAvailable {} never reached {expected}",
        available().await
    );
    // Nothing arrives twice later: a last booking moves it by exactly its seats.
    let last = book().await;
    assert!(
        eventually(WAIT, || async { available().await == expected - last }).await,
        "SeatsAvailable {} never reached {}",
        available().await,
        expected - last
    );
    events.kill().await;
    bookings.kill().await;
}
