//! Data created through the APIs survives a restart of the service processes (MongoDB store): both
//! binaries are killed with SIGKILL and started again on the same databases.

use std::time::Duration;

use myevents_testkit::{Answer, ServiceProcess, eventually, unique_database};
use myevents_testkit::{mongo_env, rabbitmq_env};
use reqwest::{Client, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

async fn start_both(
    env: &[(&str, String)],
    event_db: &str,
    booking_db: &str,
) -> (ServiceProcess, ServiceProcess) {
    let mut booking_env = env.to_vec();
    booking_env.push(("MONGO_DATABASE", booking_db.to_owned()));
    let bookings = ServiceProcess::start("booking-service", &booking_env).await;
    assert!(
        eventually(WAIT, || async {
            bookings.logged("RabbitMQ consumer attached")
        })
        .await,
        "consumer attached"
    );
    let mut event_env = env.to_vec();
    event_env.push(("MONGO_DATABASE", event_db.to_owned()));
    let events = ServiceProcess::start("event-service", &event_env).await;
    (events, bookings)
}

#[tokio::test]
async fn locations_events_and_bookings_survive_a_restart_of_both_services() {
    let mut env = rabbitmq_env();
    // Each start below names its database.
    env.extend(mongo_env());
    let (event_db, booking_db) = (unique_database(), unique_database());
    let client = Client::new();
    let (events, bookings) = start_both(&env, &event_db, &booking_db).await;

    let event = Answer::read(
        client
            .post(format!("{}/events", events.url()))
            .json(&json!({"Name":"opera aida","StartDate":1,"EndDate":2,
                "Location":{"Name":"West Hall","Halls":[{"name":"A","capacity":4}]}}))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(event.status, StatusCode::CREATED, "{}", event.body);
    let id = event.body["ID"].as_str().expect("ID").to_owned();
    let location_id = event.body["Location"]["ID"]
        .as_str()
        .expect("ID")
        .to_owned();
    let book = |url: String, seats: u32| {
        let client = client.clone();
        async move {
            Answer::read(
                client
                    .post(url)
                    .header("x-user-id", "alice")
                    .body(format!(r#"{{"seats":{seats}}}"#))
                    .send()
                    .await
                    .expect("request"),
            )
            .await
        }
    };
    let url = format!("{}/events/{id}/bookings", bookings.url());
    let mut booking = book(url.clone(), 2).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while booking.status == StatusCode::NOT_FOUND && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(25)).await;
        booking = book(url.clone(), 2).await;
    }
    assert_eq!(booking.status, StatusCode::CREATED, "{}", booking.body);
    let booking_id = booking.body["ID"].as_str().expect("ID").to_owned();

    events.kill().await;
    bookings.kill().await;
    let (events, bookings) = start_both(&env, &event_db, &booking_db).await;

    let read = |url: String| {
        let client = client.clone();
        // As the user who booked (authentication is off: X-User-Id).
        let request = client.get(url).header("x-user-id", "alice");
        async move { Answer::read(request.send().await.expect("request")).await }
    };
    assert_eq!(
        read(format!("{}/events/{id}", events.url())).await.body,
        event.body
    );
    assert_eq!(
        read(format!("{}/locations/{location_id}", events.url()))
            .await
            .body,
        event.body["Location"]
    );
    assert_eq!(
        read(format!("{}/bookings/{booking_id}", bookings.url()))
            .await
            .body,
        booking.body
    );
    assert_eq!(
        read(format!("{}/users/alice/bookings", bookings.url()))
            .await
            .body,
        json!([booking.body])
    );
    // The remaining seats survived too: 2 of 4 are left.
    let url = format!("{}/events/{id}/bookings", bookings.url());
    assert_eq!(book(url.clone(), 3).await.status, StatusCode::CONFLICT);
    assert_eq!(book(url, 2).await.status, StatusCode::CREATED);
    events.kill().await;
    bookings.kill().await;
}
