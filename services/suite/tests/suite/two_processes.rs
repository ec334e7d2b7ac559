//! End to end over a real broker (RabbitMQ, then a Kafka-protocol broker) and the MongoDB-wire server:
//! the `event-service` and `booking-service` binaries as two separate processes (fresh exchange, queue
//! or topic, and databases), a location and an event created on one, booked on the other until sold
//! out.

use std::time::Duration;

use myevents_testkit::get_json;
use myevents_testkit::post_json;
use myevents_testkit::{
    ServiceProcess, eventually, eventually_answers, mongo_url, unique_database,
};
use myevents_testkit::{kafka_env, listed_seats, rabbitmq_env};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn over_rabbitmq_an_event_created_on_one_service_is_booked_on_the_other_until_sold_out() {
    book_across_processes(rabbitmq_env()).await;
}

#[tokio::test]
async fn over_kafka_an_event_created_on_one_service_is_booked_on_the_other_until_sold_out() {
    book_across_processes(kafka_env()).await;
}

/// Starts both binaries with `broker_env` (plus a MongoDB database each), waits until the booking
/// service is ready (store answers, consumer attached), and books an event created on the event
/// service until sold out.
async fn book_across_processes(broker_env: Vec<(&str, String)>) {
    let mut env = broker_env;
    env.extend([
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo_url()),
        ("MONGO_DATABASE", unique_database()),
    ]);
    let bookings = ServiceProcess::start("booking-service", &env).await;
    env.push(("MONGO_DATABASE", unique_database()));
    let ready = format!("{}/readyz", bookings.url());
    assert!(
        eventually_answers(&ready, StatusCode::OK, WAIT).await,
        "the booking service became ready"
    );
    let events = ServiceProcess::start("event-service", &env).await;
    let client = Client::new();

    let location: Value = post_json(
        &client,
        format!("{}/locations", events.url()),
        &json!({"Name":"West Hall","Halls":[{"name":"A","capacity":4}]}),
    )
    .await;
    let created = client
        .post(format!("{}/events", events.url()))
        .json(
            &json!({"Name":"opera aida","StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
            "Hall":"A","Location":{"ID":location["ID"]}}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), StatusCode::CREATED);
    let event: Value = created.json().await.expect("json");
    let url = format!(
        "{}/events/{}/bookings",
        bookings.url(),
        event["ID"].as_str().expect("ID")
    );

    let book = |seats: u32| {
        let client = client.clone();
        let url = url.clone();
        async move {
            client
                .post(url)
                .header("x-user-id", "e2e")
                .body(format!(r#"{{"seats":{seats}}}"#))
                .send()
                .await
                .expect("request")
                .status()
        }
    };
    // The booking service learns of the event asynchronously: 404 until the message is consumed.
    let deadline = tokio::time::Instant::now() + WAIT;
    let first = loop {
        let status = book(2).await;
        if status != StatusCode::NOT_FOUND || tokio::time::Instant::now() >= deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!(
        first,
        StatusCode::CREATED,
        "the booking service learned of the event"
    );
    assert_eq!(book(1).await, StatusCode::CREATED);
    assert_eq!(book(2).await, StatusCode::CONFLICT);
    assert_eq!(book(1).await, StatusCode::CREATED);
    assert_eq!(book(1).await, StatusCode::CONFLICT);

    let seats = listed_seats(&client, &url).await;
    assert_eq!(seats, 4);

    // The event service hears of every booking and shows the event sold out.
    let event_url = format!(
        "{}/events/{}",
        events.url(),
        event["ID"].as_str().expect("ID")
    );
    let sold_out = eventually(WAIT, || async {
        let shown: Value = get_json(&client, &event_url).await;
        shown["SeatsAvailable"] == 0
    })
    .await;
    assert!(
        sold_out,
        "SeatsAvailable converged to 0 on the event service"
    );
    events.kill().await;
    bookings.kill().await;
}
