//! Buyers' holds end to end, over each real broker and the MongoDB-wire server, through the service
//! binaries: a hold takes its seats, is confirmed into its booking (which the event service then
//! counts) or released; and one that lapses gives its seats back once, with two booking-service
//! replicas running the lapse job on one store.

use std::time::Duration;

use myevents_domain::id::EventId;
use myevents_store::BookingRepository;
use myevents_store::mongo::{MongoBookingRepository, MongoConfig, MongoStore};
use myevents_testkit::{
    ServiceProcess, create_event_across, eventually, eventually_answers, get_json, kafka_env,
    mongo_url, post_json, rabbitmq_env, unique_database,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq_holds_are_confirmed_released_or_lapse_once() {
    holds(rabbitmq_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_kafka_holds_are_confirmed_released_or_lapse_once() {
    holds(kafka_env()).await;
}

/// `POST url` as `user` with the JSON `body`; the status and the body (JSON, or null).
async fn post_as(client: &Client, url: String, user: &str, body: &Value) -> (StatusCode, Value) {
    let answer = client
        .post(url)
        .header("x-user-id", user)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn holds(broker_env: Vec<(&str, String)>) {
    let booking_database = unique_database();
    let mut env = broker_env;
    env.extend([
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo_url()),
        ("MONGO_DATABASE", booking_database.clone()),
        ("HOLD_SWEEP_INTERVAL", "1".to_owned()),
    ]);
    // Two replicas on one store: holds of the first keep 10 minutes, of the second one second.
    let bookings = ServiceProcess::start("booking-service", &env).await;
    let mut brief = env.clone();
    brief.push(("HOLD_TTL", "1".to_owned()));
    let replica = ServiceProcess::start("booking-service", &brief).await;
    env.push(("MONGO_DATABASE", unique_database()));
    let events = ServiceProcess::start("event-service", &env).await;
    let client = Client::new();
    for service in [&bookings, &replica] {
        let ready = format!("{}/readyz", service.url());
        assert!(
            eventually_answers(&ready, StatusCode::OK, WAIT).await,
            "ready"
        );
    }
    let location: Value = post_json(
        &client,
        format!("{}/locations", events.url()),
        &json!({"Name":"Club","Halls":[{"name":"Main","capacity":5}]}),
    )
    .await;
    let event_id = create_event_across(
        &client,
        &events,
        &bookings,
        &json!({"Name":"late show","StartDate":1_768_000_000_i64,
            "EndDate":1_768_007_200_i64,"Hall":"Main","Location":{"ID":location["ID"]}}),
        WAIT,
    )
    .await;
    let store = MongoStore::start(&MongoConfig::new(mongo_url(), booking_database), Vec::new())
        .await
        .expect("store");
    let repository = MongoBookingRepository::new(&store);
    let id = EventId::parse(&event_id).expect("id");
    let remaining = || async {
        repository
            .inventory(id)
            .await
            .expect("read")
            .map(|inventory| inventory.remaining.get())
    };
    let holds_url = |service: &ServiceProcess| format!("{}/events/{event_id}/holds", service.url());
    let seats = |n: i64| json!({ "seats": n });

    // Held, then confirmed into its booking.
    let (status, hold) = post_as(&client, holds_url(&bookings), "alice", &seats(3)).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let hold_id = hold["ID"].as_str().expect("ID").to_owned();
    let (status, _) = post_as(
        &client,
        format!("{}/events/{event_id}/bookings", bookings.url()),
        "bob",
        &seats(3),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "the held seats are taken");
    let confirm = format!("{}/holds/{hold_id}/confirmation", bookings.url());
    let (status, booking) = post_as(&client, confirm.clone(), "alice", &Value::Null).await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    assert_eq!(booking["ID"], hold_id.as_str());
    let (status, again) = post_as(&client, confirm, "alice", &Value::Null).await;
    assert_eq!((status, &again), (StatusCode::OK, &booking));
    let event_url = format!("{}/events/{event_id}", events.url());
    let counted = || async { get_json(&client, &event_url).await["SeatsAvailable"] == 2 };
    assert!(
        eventually(WAIT, counted).await,
        "the event service counted the booking"
    );

    // Held, then released.
    let (status, hold) = post_as(&client, holds_url(&bookings), "carol", &seats(1)).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    assert_eq!(remaining().await, Some(1));
    let release = format!(
        "{}/holds/{}",
        bookings.url(),
        hold["ID"].as_str().expect("ID")
    );
    let answer = |response: reqwest::Response| response.status();
    let released = client
        .delete(&release)
        .header("x-user-id", "carol")
        .send()
        .await;
    assert_eq!(answer(released.expect("request")), StatusCode::NO_CONTENT);
    let twice = client
        .delete(&release)
        .header("x-user-id", "carol")
        .send()
        .await;
    assert_eq!(answer(twice.expect("request")), StatusCode::NOT_FOUND);
    assert_eq!(remaining().await, Some(2));

    // Held for a second on the other replica: it lapses, and its seats come back once.
    let (status, hold) = post_as(&client, holds_url(&replica), "dave", &seats(2)).await;
    assert_eq!(status, StatusCode::CREATED, "{hold}");
    let expires_at = hold["ExpiresAt"].as_i64().expect("ExpiresAt");
    assert_eq!(expires_at - hold["HeldAt"].as_i64().expect("HeldAt"), 1);
    assert!(
        eventually(WAIT, || async { remaining().await == Some(2) }).await,
        "the lapsed hold's seats came back: {:?} remain",
        remaining().await
    );
    let lapsed_id = hold["ID"].as_str().expect("ID");
    for service in [&bookings, &replica] {
        let confirm = format!("{}/holds/{lapsed_id}/confirmation", service.url());
        let (status, problem) = post_as(&client, confirm, "dave", &Value::Null).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{problem}");
    }
    // Both lapse jobs ran meanwhile; the seats came back once, not twice.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(remaining().await, Some(2));
    events.kill().await;
    replica.kill().await;
    bookings.kill().await;
}
