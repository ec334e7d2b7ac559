//! A waitlist end to end, over each real broker and the MongoDB-wire server, through the service
//! binaries: on a sold-out event buyers join in order and nobody else books; seats a cancellation
//! gives back are offered to the first buyer waiting as a hold in their name, which they confirm
//! into a booking the event service counts; a buyer can leave.

use std::time::Duration;

use myevents_testkit::{
    ServiceProcess, create_event_across, eventually, eventually_answers, get_json, kafka_env,
    mongo_url, post_json, rabbitmq_env, unique_database,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_rabbitmq_returned_seats_are_offered_to_the_waitlist_in_order() {
    waitlist(rabbitmq_env()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_kafka_returned_seats_are_offered_to_the_waitlist_in_order() {
    waitlist(kafka_env()).await;
}

/// `method url` as `user` with the JSON `body`; the status and the body (JSON, or null).
async fn call(
    client: &Client,
    method: reqwest::Method,
    url: String,
    user: &str,
    body: &Value,
) -> (StatusCode, Value) {
    let answer = client
        .request(method, url)
        .header("x-user-id", user)
        .json(body)
        .send()
        .await
        .expect("request");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

async fn waitlist(broker_env: Vec<(&str, String)>) {
    use reqwest::Method;
    let mut env = broker_env;
    env.extend([
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo_url()),
        ("MONGO_DATABASE", unique_database()),
        ("HOLD_SWEEP_INTERVAL", "1".to_owned()),
    ]);
    let bookings = ServiceProcess::start("booking-service", &env).await;
    env.push(("MONGO_DATABASE", unique_database()));
    let events = ServiceProcess::start("event-service", &env).await;
    let client = Client::new();
    let ready = format!("{}/readyz", bookings.url());
    assert!(
        eventually_answers(&ready, StatusCode::OK, WAIT).await,
        "ready"
    );
    let location: Value = post_json(
        &client,
        format!("{}/locations", events.url()),
        &json!({"Name":"Cellar","Halls":[{"name":"Main","capacity":2}]}),
    )
    .await;
    let event_id = create_event_across(
        &client,
        &events,
        &bookings,
        &json!({"Name":"secret gig","StartDate":1_768_000_000_i64,
            "EndDate":1_768_007_200_i64,"Hall":"Main","Location":{"ID":location["ID"]}}),
        WAIT,
    )
    .await;
    let base = bookings.url();
    let seats = |n: i64| json!({ "seats": n });
    let book_url = format!("{base}/events/{event_id}/bookings");
    let waitlist_url = format!("{base}/events/{event_id}/waitlist");

    let (status, early) = call(
        &client,
        Method::POST,
        waitlist_url.clone(),
        "bob",
        &seats(2),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "seats are on sale: {early}");
    let (status, alice) = call(&client, Method::POST, book_url.clone(), "alice", &seats(2)).await;
    assert_eq!(status, StatusCode::CREATED, "{alice}");
    let mut entries = Vec::new();
    for (user, wanted, place) in [("bob", 2, 1), ("carol", 1, 2)] {
        let (status, entry) = call(
            &client,
            Method::POST,
            waitlist_url.clone(),
            user,
            &seats(wanted),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{entry}");
        assert_eq!(entry["Place"], place);
        entries.push(entry["ID"].as_str().expect("ID").to_owned());
    }

    // Alice cancels: her 2 seats go to bob, the first waiting, not to dave who tries to book.
    let cancel = format!("{base}/bookings/{}", alice["ID"].as_str().expect("ID"));
    let (status, _) = call(&client, Method::DELETE, cancel, "alice", &Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&client, Method::POST, book_url.clone(), "dave", &seats(1)).await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "others wait: nobody books before them"
    );
    let entry_url = |id: &str| format!("{base}/waitlist/{id}");
    let offer = || async {
        let (_, entry) = call(
            &client,
            Method::GET,
            entry_url(&entries[0]),
            "bob",
            &Value::Null,
        )
        .await;
        entry["Offer"]["HoldID"].as_str().map(str::to_owned)
    };
    assert!(
        eventually(WAIT, || async { offer().await.is_some() }).await,
        "bob got an offer"
    );
    let hold_id = offer().await.expect("offer");
    let (_, carol) = call(
        &client,
        Method::GET,
        entry_url(&entries[1]),
        "carol",
        &Value::Null,
    )
    .await;
    assert_eq!(
        (&carol["Place"], &carol["Offer"]),
        (&json!(1), &Value::Null)
    );
    let confirm = format!("{base}/holds/{hold_id}/confirmation");
    let (status, booking) = call(&client, Method::POST, confirm, "bob", &Value::Null).await;
    assert_eq!(status, StatusCode::CREATED, "{booking}");
    assert_eq!(
        (&booking["UserID"], &booking["Seats"]),
        (&json!("bob"), &json!(2))
    );
    let event_url = format!("{}/events/{event_id}", events.url());
    let counted = || async { get_json(&client, &event_url).await["SeatsAvailable"] == 0 };
    assert!(
        eventually(WAIT, counted).await,
        "the event service counted bob's booking"
    );

    // Carol leaves; her entry is gone.
    let (status, _) = call(
        &client,
        Method::DELETE,
        entry_url(&entries[1]),
        "carol",
        &Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &client,
        Method::GET,
        entry_url(&entries[1]),
        "carol",
        &Value::Null,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, mine) = call(
        &client,
        Method::GET,
        format!("{base}/users/bob/waitlist"),
        "bob",
        &Value::Null,
    )
    .await;
    assert_eq!(
        (status, mine[0]["ID"].as_str()),
        (StatusCode::OK, Some(entries[0].as_str()))
    );
    events.kill().await;
    bookings.kill().await;
}
