//! An organiser's changes of an event end to end, over each real broker and the MongoDB-wire
//! server, through the two service binaries: an edit with `If-Match` (a stale copy is 412, a
//! capacity below the seats booked 409) moves the seats the booking service sells by the
//! difference; a cancellation cancels every booking once, with its reason, which each buyer sees
//! in their bookings, and the event refuses bookings (410) and changes (409). Its location is then
//! extended and, with no event to come, deleted.

use std::time::Duration;

use myevents_domain::id::EventId;
use myevents_store::mongo::{MongoBookingRepository, MongoConfig, MongoStore};
use myevents_store::{BookingRepository, PageRequest};
use myevents_testkit::{
    ServiceProcess, create_event_across, eventually, eventually_answers, get_json, kafka_env,
    mongo_url, post_json, rabbitmq_env, unique_database,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq_an_edit_moves_the_seats_on_sale_and_a_cancellation_cancels_every_booking() {
    edit_and_cancel(rabbitmq_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_kafka_an_edit_moves_the_seats_on_sale_and_a_cancellation_cancels_every_booking() {
    edit_and_cancel(kafka_env()).await;
}

/// Books `seats` of `event_id` for `user`; the answer's status.
async fn book(
    client: &Client,
    bookings: &ServiceProcess,
    event_id: &str,
    user: &str,
    seats: i64,
) -> (StatusCode, Value) {
    let answer = client
        .post(format!("{}/events/{event_id}/bookings", bookings.url()))
        .header("x-user-id", user)
        .json(&json!({ "seats": seats }))
        .send()
        .await
        .expect("request");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn edit_and_cancel(broker_env: Vec<(&str, String)>) {
    let booking_database = unique_database();
    let mut env = broker_env;
    env.extend([
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo_url()),
        ("MONGO_DATABASE", booking_database.clone()),
        // Only the messages cancel the bookings here, not the reconciliation's sweep.
        ("RECONCILE_INTERVAL", "3600".to_owned()),
    ]);
    let bookings = ServiceProcess::start("booking-service", &env).await;
    env.push(("MONGO_DATABASE", unique_database()));
    let events = ServiceProcess::start("event-service", &env).await;
    let client = Client::new();
    assert!(
        eventually_answers(&format!("{}/readyz", bookings.url()), StatusCode::OK, WAIT).await,
        "the booking service became ready"
    );
    let location: Value = post_json(
        &client,
        format!("{}/locations", events.url()),
        &json!({"Name":"Arena","Halls":[{"name":"Main","capacity":10}]}),
    )
    .await;
    let event_id = create_event_across(
        &client,
        &events,
        &bookings,
        &json!({"Name":"cup final","StartDate":1_768_000_000_i64,
            "EndDate":1_768_007_200_i64,"Hall":"Main","Location":{"ID":location["ID"]}}),
        WAIT,
    )
    .await;
    for (user, seats) in [("alice", 3), ("bob", 2)] {
        assert_eq!(
            book(&client, &bookings, &event_id, user, seats).await.0,
            StatusCode::CREATED
        );
    }
    let event_url = format!("{}/events/{event_id}", events.url());
    let shows = |field: &'static str, value: Value| {
        let (client, url) = (client.clone(), event_url.clone());
        async move { get_json(&client, &url).await[field] == value }
    };
    assert!(
        eventually(WAIT, || shows("SeatsAvailable", json!(5))).await,
        "the event service counted the 5 seats booked"
    );

    // An edit: a stale copy and a capacity below the seats booked change nothing.
    let read = client.get(&event_url).send().await.expect("read");
    let etag = read.headers()["etag"].to_str().expect("etag").to_owned();
    let patch = |body: Value, tag: &str| {
        client
            .patch(&event_url)
            .header("if-match", tag)
            .json(&body)
            .send()
    };
    let stale = patch(json!({"Capacity": 12}), "\"0123\"")
        .await
        .expect("request");
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let below = patch(json!({"Capacity": 4}), &etag).await.expect("request");
    assert_eq!(below.status(), StatusCode::CONFLICT);
    let stranger = client
        .patch(&event_url)
        .header("x-user-id", "mallory")
        .json(&json!({"Name": "mine"}))
        .send()
        .await
        .expect("request");
    assert_eq!(stranger.status(), StatusCode::FORBIDDEN);
    let edited = patch(json!({"Name": "cup final (replay)", "Capacity": 12}), &etag)
        .await
        .expect("request");
    assert_eq!(edited.status(), StatusCode::OK);
    let new_etag = edited.headers()["etag"].to_str().expect("etag").to_owned();
    assert_ne!(new_etag, etag);
    let edited: Value = edited.json().await.expect("json");
    assert_eq!(
        (
            &edited["Name"],
            &edited["Capacity"],
            &edited["SeatsAvailable"]
        ),
        (&json!("cup final (replay)"), &json!(12), &json!(7))
    );
    let again = patch(json!({"Capacity": 20}), &etag)
        .await
        .expect("request");
    assert_eq!(
        again.status(),
        StatusCode::PRECONDITION_FAILED,
        "the old copy is stale now"
    );

    // The booking service sells the 2 seats more once it read `eventUpdated`.
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
    assert!(
        eventually(WAIT, || async { remaining().await == Some(7) }).await,
        "the inventory grew by 2 seats: {:?} remain",
        remaining().await
    );
    assert_eq!(
        book(&client, &bookings, &event_id, "carol", 7).await.0,
        StatusCode::CREATED
    );

    // A cancellation: every booking cancelled once, with the reason; nothing more booked.
    let cancellation_url = format!("{event_url}/cancellation");
    let cancelled = client
        .post(&cancellation_url)
        .json(&json!({"Reason": "the pitch is flooded"}))
        .send()
        .await
        .expect("request");
    assert_eq!(cancelled.status(), StatusCode::OK);
    let cancelled: Value = cancelled.json().await.expect("json");
    assert!(cancelled["CancelledAt"].is_i64(), "{cancelled}");
    assert_eq!(cancelled["CancellationReason"], "the pitch is flooded");
    assert_eq!(cancelled["SeatsAvailable"], 0);
    let twice = client
        .post(&cancellation_url)
        .send()
        .await
        .expect("request");
    assert_eq!(twice.status(), StatusCode::OK);
    assert_eq!(twice.json::<Value>().await.expect("json"), cancelled);
    let edit_after = client
        .patch(&event_url)
        .json(&json!({"Name": "too late"}))
        .send()
        .await
        .expect("request");
    assert_eq!(edit_after.status(), StatusCode::CONFLICT);

    let reason = "the event was cancelled: the pitch is flooded";
    let all_cancelled = || async {
        let stored = repository
            .bookings_for_event(id, PageRequest::first(100))
            .await
            .expect("list");
        stored.len() == 3
            && stored
                .iter()
                .all(|b| b.cancelled_at.is_some() && b.cancel_reason.as_deref() == Some(reason))
    };
    assert!(
        eventually(WAIT, all_cancelled).await,
        "every booking was cancelled"
    );
    let alices: Value = client
        .get(format!("{}/users/alice/bookings", bookings.url()))
        .header("x-user-id", "alice")
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert_eq!(alices[0]["CancelReason"], reason, "{alices}");
    assert!(alices[0]["CancelledAt"].is_i64());
    let (status, problem) = book(&client, &bookings, &event_id, "dave", 1).await;
    assert_eq!(status, StatusCode::GONE, "{problem}");
    // The seats were not given back to sale: the inventory is as it was before the cancellation.
    assert_eq!(remaining().await, Some(0));

    // Its location: extended with If-Match, then deleted (its only event is cancelled), after
    // which no event is created there.
    change_and_delete_location(&client, &events, &location).await;
    events.kill().await;
    bookings.kill().await;
}

/// Adds a hall to `location` with `If-Match` (a stale copy is 412), deletes it, and checks that it
/// is gone: 404, not listed, no event created at it (422).
async fn change_and_delete_location(client: &Client, events: &ServiceProcess, location: &Value) {
    let url = format!(
        "{}/locations/{}",
        events.url(),
        location["ID"].as_str().expect("ID")
    );
    let read = client.get(&url).send().await.expect("read");
    let etag = read.headers()["etag"].to_str().expect("etag").to_owned();
    let extend = |tag: &str| {
        client
            .patch(&url)
            .header("if-match", tag)
            .json(&json!({"Halls": [{"name": "Main", "capacity": 10}, {"name": "Side", "capacity": 4}]}))
            .send()
    };
    let extended = extend(&etag).await.expect("request");
    assert_eq!(extended.status(), StatusCode::OK);
    let extended: Value = extended.json().await.expect("json");
    assert_eq!(extended["Halls"][1]["name"], "Side");
    assert_eq!(get_json(client, &url).await, extended);
    let stale = extend(&etag).await.expect("request");
    assert_eq!(stale.status(), StatusCode::PRECONDITION_FAILED);
    let deleted = client.delete(&url).send().await.expect("request");
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let read = client.get(&url).send().await.expect("read");
    assert_eq!(read.status(), StatusCode::NOT_FOUND);
    let listed: Value = get_json(client, &format!("{}/locations", events.url())).await;
    assert!(
        !listed
            .as_array()
            .expect("array")
            .iter()
            .any(|l| l["ID"] == location["ID"]),
        "{listed}"
    );
    let refused = client
        .post(format!("{}/events", events.url()))
        .json(
            &json!({"Name":"rematch","StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
            "Location":{"ID":location["ID"]}}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
}
