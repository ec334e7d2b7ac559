//! API tests of the booking service: the real application on port 0, consuming from and publishing to
//! the real RabbitMQ (a fresh exchange and queue per test); every route and every error status.

use std::sync::Arc;
use std::time::Duration;

use myevents_booking_service::config::BookingServiceConfig;
use myevents_booking_service::{Application, Dependencies};
use myevents_broker::rabbitmq::RabbitMqBroker;
use myevents_broker::{
    Consumer, DEAD_LETTER_REASON_HEADER, EventPublisher, EventSubscriber, Message, Subscription,
};
use myevents_domain::id::EventId;
use myevents_domain::messages::{DomainEvent, EventCreated};
use myevents_host::HostConfig;
use myevents_messaging::broker::Broker;
use myevents_store::config::{MongoConfig, StoreConfig};
use myevents_testkit::{
    Answer, Recorded, Recorder, eventually, mongo_url, rabbitmq_broker, unique, unique_database,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

struct TestApp {
    url: String,
    client: Client,
    broker: RabbitMqBroker,
    queue: String,
    /// The service's MongoDB settings (its own database).
    mongo: MongoConfig,
    /// Every `eventBooked` the service published.
    published: Recorded,
    _observer: Consumer,
}

fn assert_problem(answer: &Answer, status: StatusCode) {
    answer.assert_problem(status);
}

impl TestApp {
    async fn spawn() -> Self {
        let broker = rabbitmq_broker();
        let observer = Subscription::new(unique("observer"), &["eventBooked", "bookingCancelled"]);
        broker.declare(&observer).await.expect("declare observer");
        let (recorder, published) = Recorder::new();
        let observer = broker
            .subscribe(&observer, recorder)
            .await
            .expect("observe");
        let queue = unique("booking");
        let mongo = MongoConfig::new(mongo_url(), unique_database());
        let config = BookingServiceConfig {
            host: HostConfig::ephemeral(queue.clone()),
            max_seats_per_booking: 4,
            default_capacity: None,
            reconcile_every: std::time::Duration::from_secs(1),
            reconcile_grace: std::time::Duration::from_secs(30),
            fault: None,
        };
        let store = StoreConfig::MongoDb(mongo.clone());
        let deps = Dependencies::from_config(&store, Broker::new(broker.clone()))
            .await
            .expect("store");
        let app = Application::build(&config, deps).await.expect("build");
        let url = format!("http://{}", app.local_addr());
        assert!(
            eventually(WAIT, || async { app.consumer_attached() }).await,
            "consumer attached"
        );
        tokio::spawn(app.run_until_stopped(std::future::pending()));
        Self {
            url,
            client: Client::new(),
            broker,
            queue,
            mongo,
            published,
            _observer: observer,
        }
    }

    /// Announces an event of `capacity` seats as the event service would, and waits until the
    /// booking service knows it.
    async fn announce_event(&self, capacity: u32) -> EventId {
        let id = EventId::generate();
        let created = DomainEvent::EventCreated(EventCreated {
            id,
            name: "opera aida".to_owned(),
            location_id: None,
            start_date: chrono::DateTime::from_timestamp(1_768_000_000, 0).expect("time"),
            end_date: chrono::DateTime::from_timestamp(1_768_007_200, 0).expect("time"),
            capacity: Some(capacity),
            hall: None,
            location_name: None,
            organiser: Some("anonymous".to_owned()),
        });
        self.broker
            .publish(&Message::new(
                created.name(),
                created.key(),
                created.to_json(),
            ))
            .await
            .expect("publish");
        let known = eventually(WAIT, || async {
            self.get(&format!("/events/{id}/bookings")).await.status == StatusCode::OK
        })
        .await;
        assert!(known, "the booking service learned of event {id}");
        id
    }

    async fn get(&self, path: &str) -> Answer {
        self.get_as(path, None).await
    }

    /// `GET path` as `user` (`X-User-Id`; authentication is off), or anonymously.
    async fn get_as(&self, path: &str, user: Option<&str>) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.url));
        if let Some(user) = user {
            request = request.header("x-user-id", user);
        }
        Answer::read(request.send().await.expect("request")).await
    }

    async fn book(&self, event: &str, body: &str, user: Option<&str>) -> Answer {
        self.book_with_key(event, body, user, None).await
    }

    async fn book_with_key(
        &self,
        event: &str,
        body: &str,
        user: Option<&str>,
        key: Option<&str>,
    ) -> Answer {
        let mut request = self
            .client
            .post(format!("{}/events/{event}/bookings", self.url))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body.to_owned());
        if let Some(user) = user {
            request = request.header("x-user-id", user);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", format!("\"{key}\""));
        }
        Answer::read(request.send().await.expect("request")).await
    }

    /// The bookings stored for `event`, read straight from the database.
    async fn stored_bookings(&self, event: &str) -> Vec<myevents_domain::booking::Booking> {
        use myevents_store::BookingRepository;
        let store = myevents_store::mongo::MongoStore::start(&self.mongo, Vec::new())
            .await
            .expect("store");
        myevents_store::mongo::MongoBookingRepository::new(&store)
            .bookings_for_event(
                EventId::parse(event).expect("id"),
                myevents_store::PageRequest::first(1000),
            )
            .await
            .expect("list")
    }
}

#[tokio::test]
async fn booking_answers_201_stores_the_booking_and_announces_it() {
    let mut app = TestApp::spawn().await;
    let event = app.announce_event(10).await;
    let answer = app
        .book(&event.to_string(), r#"{"seats":3}"#, Some("alice"))
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let id = answer.body["ID"].as_str().expect("ID").to_owned();
    assert_eq!(
        answer.headers["location"],
        format!("/bookings/{id}").as_str()
    );
    assert_eq!(answer.body["EventID"], event.to_string());
    assert_eq!(answer.body["UserID"], "alice");
    assert_eq!(answer.body["Seats"], 3);
    let date = answer.body["Date"].as_i64().expect("Date");
    assert!((chrono::Utc::now().timestamp() - date).abs() < 60);

    assert_eq!(
        app.get_as(&format!("/bookings/{id}"), Some("alice"))
            .await
            .body,
        answer.body
    );
    assert_eq!(
        app.get(&format!("/events/{event}/bookings")).await.body,
        json!([answer.body])
    );
    assert_eq!(
        app.get_as("/users/alice/bookings", Some("alice"))
            .await
            .body,
        json!([answer.body])
    );
    assert_eq!(
        app.get_as("/users/bob/bookings", Some("bob")).await.body,
        json!([])
    );
    // Someone else's booking does not exist for them; another user's list is refused.
    assert_problem(
        &app.get_as(&format!("/bookings/{id}"), Some("bob")).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.get_as("/users/alice/bookings", Some("bob")).await,
        StatusCode::FORBIDDEN,
    );

    let message = app.published.next(WAIT).await;
    assert_eq!(message.name, "eventBooked");
    assert_eq!(message.key, event.to_string());
    let body: Value = serde_json::from_slice(&message.payload).expect("json");
    assert_eq!(body["eventId"], event.to_string());
    assert_eq!(body["userId"], "alice");
    assert_eq!(body["bookingId"], id);
    assert_eq!(body["seats"], 3);
}

#[tokio::test]
async fn a_booking_without_a_user_is_anonymous_and_json_bodies_work_too() {
    let app = TestApp::spawn().await;
    let event = app.announce_event(10).await;
    let response = app
        .client
        .post(format!("{}/events/{event}/bookings", app.url))
        .json(&json!({"Seats": 1}))
        .send()
        .await
        .expect("request");
    let answer = Answer::read(response).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["UserID"], "anonymous");
}

#[tokio::test]
async fn booking_until_sold_out_then_409_and_never_below_zero() {
    let app = TestApp::spawn().await;
    let event = app.announce_event(5).await.to_string();
    assert_eq!(
        app.book(&event, r#"{"seats":4}"#, None).await.status,
        StatusCode::CREATED
    );
    let too_many = app.book(&event, r#"{"seats":2}"#, None).await;
    assert_problem(&too_many, StatusCode::CONFLICT);
    assert_eq!(too_many.body["detail"], "2 seats requested, 1 remain");
    assert_eq!(
        app.book(&event, r#"{"seats":1}"#, None).await.status,
        StatusCode::CREATED
    );
    assert_problem(
        &app.book(&event, r#"{"seats":1}"#, None).await,
        StatusCode::CONFLICT,
    );
    let booked: i64 = app
        .get(&format!("/events/{event}/bookings"))
        .await
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["Seats"].as_i64().expect("seats"))
        .sum();
    assert_eq!(booked, 5);
}

#[tokio::test]
async fn bad_seats_bodies_users_and_ids_get_problems() {
    let app = TestApp::spawn().await;
    let event = app.announce_event(100).await.to_string();
    for body in [
        r#"{"seats":0}"#,
        r#"{"seats":-1}"#,
        r#"{"seats":5}"#,
        "{}",
        r#"{"seats":"2"}"#,
    ] {
        assert_problem(
            &app.book(&event, body, None).await,
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    assert_problem(
        &app.book(&event, "{seats", None).await,
        StatusCode::BAD_REQUEST,
    );
    assert_problem(
        &app.book(&event, r#"{"seats":1}"#, Some(&"u".repeat(129)))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    let xml = app
        .client
        .post(format!("{}/events/{event}/bookings", app.url))
        .header("content-type", "application/xml")
        .body("<seats>1</seats>")
        .send()
        .await
        .expect("request");
    Answer::read(xml)
        .await
        .assert_problem(StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for path in [
        "/bookings/000000000000000000000000",
        "/bookings/nope",
        "/events/000000000000000000000000/bookings",
        "/events/nope/bookings",
    ] {
        assert_problem(&app.get(path).await, StatusCode::NOT_FOUND);
    }
    assert_problem(
        &app.book("000000000000000000000000", r#"{"seats":1}"#, None)
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.book("nope", r#"{"seats":1}"#, None).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.get("/events/{event}/bookings?limit=abc").await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &app.get(&format!("/events/{event}/bookings?limit=abc"))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
    );
}

#[tokio::test]
async fn the_frontends_exact_booking_request_gets_cors_headers() {
    let app = TestApp::spawn().await;
    let event = app.announce_event(10).await;
    // What the reference frontend's fetch() sends: no Content-Type set by the script, so the browser
    // sends text/plain, plus the page's Origin.
    let response = app
        .client
        .post(format!("{}/events/{event}/bookings", app.url))
        .header("Origin", "http://localhost")
        .header("Content-Type", "text/plain;charset=UTF-8")
        .body(r#"{"seats":1}"#)
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["access-control-allow-origin"], "*");
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .expect("header")
        .to_owned();
    assert!(exposed.contains("location"), "{exposed}");
}

#[tokio::test]
async fn a_redelivered_event_created_keeps_the_remaining_seats() {
    let app = TestApp::spawn().await;
    let event = app.announce_event(3).await;
    assert_eq!(
        app.book(&event.to_string(), r#"{"seats":2}"#, None)
            .await
            .status,
        StatusCode::CREATED
    );
    // The same announcement again (a redelivery): the event must not get its seats back.
    let again = DomainEvent::EventCreated(EventCreated {
        id: event,
        name: "opera aida".to_owned(),
        location_id: None,
        start_date: chrono::DateTime::from_timestamp(1_768_000_000, 0).expect("time"),
        end_date: chrono::DateTime::from_timestamp(1_768_007_200, 0).expect("time"),
        capacity: Some(3),
        hall: None,
        location_name: None,
        organiser: Some("anonymous".to_owned()),
    });
    app.broker
        .publish(&Message::new(again.name(), again.key(), again.to_json()))
        .await
        .expect("publish");
    // A second, fresh event published after it proves the redelivery was consumed.
    let marker = app.announce_event(1).await;
    assert_eq!(
        app.book(&marker.to_string(), r#"{"seats":1}"#, None)
            .await
            .status,
        StatusCode::CREATED
    );
    assert_problem(
        &app.book(&event.to_string(), r#"{"seats":2}"#, None).await,
        StatusCode::CONFLICT,
    );
    assert_eq!(
        app.book(&event.to_string(), r#"{"seats":1}"#, None)
            .await
            .status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn an_undecodable_message_is_dead_lettered_and_consumption_goes_on() {
    let app = TestApp::spawn().await;
    app.broker
        .publish(&Message::new("eventCreated", "k", b"{not json".to_vec()))
        .await
        .expect("publish");
    let event = app.announce_event(2).await;
    assert_eq!(
        app.book(&event.to_string(), r#"{"seats":1}"#, None)
            .await
            .status,
        StatusCode::CREATED
    );
    let (recorder, mut dead) = Recorder::new();
    let subscription = Subscription::new(&app.queue, myevents_booking_service::consumer::CONSUMES);
    let _dead_letters = app
        .broker
        .subscribe(&subscription.dead_letters(), recorder)
        .await
        .expect("subscribe to dead letters");
    let letter = dead.next(WAIT).await;
    assert_eq!(letter.payload, b"{not json");
    assert!(letter.headers[DEAD_LETTER_REASON_HEADER].contains("malformed eventCreated"));
}

#[tokio::test]
async fn two_hundred_concurrent_one_seat_bookings_of_fifty_seats_sell_exactly_fifty() {
    let app = Arc::new(TestApp::spawn().await);
    let event = app.announce_event(50).await.to_string();
    let requests: Vec<_> = (0..200)
        .map(|i| {
            let app = Arc::clone(&app);
            let event = event.clone();
            tokio::spawn(async move {
                app.book(&event, r#"{"seats":1}"#, Some(&format!("user{i}")))
                    .await
                    .status
            })
        })
        .collect();
    let mut created = 0;
    let mut conflicts = 0;
    for request in requests {
        match request.await.expect("task") {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, conflicts), (50, 150));

    // What is stored, read straight from the database.
    use myevents_store::BookingRepository;
    let store = myevents_store::mongo::MongoStore::start(&app.mongo, Vec::new())
        .await
        .expect("store");
    let repository = myevents_store::mongo::MongoBookingRepository::new(&store);
    let id = EventId::parse(&event).expect("id");
    let inventory = repository
        .inventory(id)
        .await
        .expect("read")
        .expect("known");
    assert_eq!(inventory.remaining.get(), 0);
    let stored = repository
        .bookings_for_event(id, myevents_store::PageRequest::first(1000))
        .await
        .expect("list");
    assert_eq!(stored.len(), 50);
}

#[tokio::test]
async fn the_user_who_booked_cancels_once_and_the_seats_go_back_on_sale() {
    let mut app = TestApp::spawn().await;
    let event = app.announce_event(4).await.to_string();
    let booked = app.book(&event, r#"{"seats":3}"#, Some("alice")).await;
    assert_eq!(booked.status, StatusCode::CREATED);
    let id = booked.body["ID"].as_str().expect("ID").to_owned();
    let cancel = |user: Option<&'static str>, id: String| {
        let mut request = app.client.delete(format!("{}/bookings/{id}", app.url));
        if let Some(user) = user {
            request = request.header("x-user-id", user);
        }
        async move { Answer::read(request.send().await.expect("request")).await }
    };
    // To anyone else the booking does not exist.
    assert_problem(
        &cancel(Some("bob"), id.clone()).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(&cancel(None, id.clone()).await, StatusCode::NOT_FOUND);
    assert_problem(
        &cancel(Some("alice"), "000000000000000000000000".to_owned()).await,
        StatusCode::NOT_FOUND,
    );
    assert_problem(
        &cancel(Some("alice"), "nope".to_owned()).await,
        StatusCode::NOT_FOUND,
    );

    let cancelled = cancel(Some("alice"), id.clone()).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert!(cancelled.body["CancelledAt"].is_i64());
    assert_eq!(cancelled.body["Seats"], 3);
    let again = cancel(Some("alice"), id.clone()).await;
    assert_eq!(again.status, StatusCode::OK);
    assert_eq!(again.body, cancelled.body);
    assert_eq!(
        app.get_as(&format!("/bookings/{id}"), Some("alice"))
            .await
            .body,
        cancelled.body
    );

    // The seats are back: all 4 can be booked now.
    assert_eq!(
        app.book(&event, r#"{"seats":4}"#, Some("bob")).await.status,
        StatusCode::CREATED
    );

    // Announced: the booking, then its cancellation, once.
    let mut names = Vec::new();
    while names.len() < 3 {
        let message = app.published.next(WAIT).await;
        let body: Value = serde_json::from_slice(&message.payload).expect("json");
        if message.name == "bookingCancelled" {
            assert_eq!(body["bookingId"], id);
            assert_eq!(body["seats"], 3);
            assert_eq!(body["userId"], "alice");
        }
        names.push(message.name);
    }
    names.sort();
    assert_eq!(names, ["bookingCancelled", "eventBooked", "eventBooked"]);
}

#[tokio::test]
async fn the_same_request_sent_twenty_times_at_once_with_one_key_books_once_and_announces_once() {
    let mut app = TestApp::spawn().await;
    let app_ref = &app;
    let event = app.announce_event(10).await.to_string();
    let attempts = (0..20).map(|_| {
        let event = event.clone();
        async move {
            app_ref
                .book_with_key(&event, r#"{"seats":2}"#, Some("alice"), Some("order-42"))
                .await
        }
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut booking_ids = std::collections::BTreeSet::new();
    for answer in &answers {
        match answer.status {
            StatusCode::CREATED => {
                booking_ids.insert(answer.body["ID"].as_str().expect("ID").to_owned());
            }
            // Still in flight: the draft's answer, with a hint when to retry.
            StatusCode::CONFLICT => {
                answer.assert_problem(StatusCode::CONFLICT);
                assert_eq!(answer.headers["retry-after"], "1");
            }
            other => panic!("unexpected {other}: {}", answer.body),
        }
    }
    assert_eq!(
        booking_ids.len(),
        1,
        "one booking id in every 201: {answers:?}"
    );
    let id = booking_ids.pop_first().expect("one");

    // Once the first is done every retry replays it.
    let retry = app
        .book_with_key(&event, r#"{"seats":2}"#, Some("alice"), Some("order-42"))
        .await;
    assert_eq!(retry.status, StatusCode::CREATED);
    assert_eq!(retry.body["ID"], id);
    assert_eq!(retry.headers["idempotent-replayed"], "true");

    let stored = app.stored_bookings(&event).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].id.to_string(), id);
    let inventory = app.get(&format!("/events/{event}/bookings")).await;
    assert_eq!(inventory.body.as_array().expect("list").len(), 1);

    // One eventBooked: the next message after it is the one of a later, different booking.
    let first = app.published.next(WAIT).await;
    let body: Value = serde_json::from_slice(&first.payload).expect("json");
    assert_eq!(body["bookingId"], id);
    let marker = app.book(&event, r#"{"seats":1}"#, Some("bob")).await;
    assert_eq!(marker.status, StatusCode::CREATED);
    let next = app.published.next(WAIT).await;
    let body: Value = serde_json::from_slice(&next.payload).expect("json");
    assert_eq!(
        body["bookingId"], marker.body["ID"],
        "a second eventBooked of {id}"
    );
}

#[tokio::test]
async fn a_retried_key_replays_the_first_answer_even_after_a_restart_and_a_changed_body_gets_422() {
    let app = TestApp::spawn().await;
    let event = app.announce_event(3).await.to_string();
    let first = app
        .book_with_key(&event, r#"{"seats":2}"#, Some("alice"), Some("k1"))
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.headers.get("idempotent-replayed").is_none());

    // The same document, spelled differently, is the same request.
    let again = app
        .book_with_key(&event, r#"{ "Seats" : 2 }"#, Some("alice"), Some("k1"))
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(again.headers["location"], first.headers["location"]);
    assert_eq!(again.headers["content-type"], first.headers["content-type"]);
    assert_eq!(again.headers["idempotent-replayed"], "true");

    let changed = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("alice"), Some("k1"))
        .await;
    changed.assert_problem(StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        changed.body["detail"]
            .as_str()
            .expect("detail")
            .contains("Idempotency-Key")
    );

    // Keys are per user: bob's k1 is another key.
    let bob = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("bob"), Some("k1"))
        .await;
    assert_eq!(bob.status, StatusCode::CREATED);
    assert_ne!(bob.body["ID"], first.body["ID"]);

    // A refusal is replayed too: sold out stays the answer for that key.
    let sold_out = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("carol"), Some("k2"))
        .await;
    sold_out.assert_problem(StatusCode::CONFLICT);
    let replayed = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("carol"), Some("k2"))
        .await;
    assert_eq!(replayed.status, StatusCode::CONFLICT);
    assert_eq!(replayed.body, sold_out.body);
    assert_eq!(replayed.headers["idempotent-replayed"], "true");

    // A malformed key is refused before anything happens.
    let malformed = app
        .book_with_key(&event, r#"{"seats":1}"#, Some("alice"), Some(""))
        .await;
    malformed.assert_problem(StatusCode::BAD_REQUEST);

    // Another replica (here: a second process of the service on the same database) replays it too.
    let queue = unique("booking");
    let config = BookingServiceConfig {
        host: HostConfig::ephemeral(queue),
        max_seats_per_booking: 4,
        default_capacity: None,
        reconcile_every: std::time::Duration::from_secs(60),
        reconcile_grace: std::time::Duration::from_secs(30),
        fault: None,
    };
    let memory = myevents_broker::memory::InMemoryBroker::default();
    let store = StoreConfig::MongoDb(app.mongo.clone());
    let deps = Dependencies::from_config(&store, Broker::in_memory(&memory))
        .await
        .expect("store");
    let replica = Application::build(&config, deps).await.expect("build");
    let replica_url = format!("http://{}", replica.local_addr());
    tokio::spawn(replica.run_until_stopped(std::future::pending()));
    let from_replica = Answer::read(
        app.client
            .post(format!("{replica_url}/events/{event}/bookings"))
            .header("x-user-id", "alice")
            .header("idempotency-key", "k1")
            .json(&json!({"seats": 2}))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(
        from_replica.status,
        StatusCode::CREATED,
        "{}",
        from_replica.body
    );
    assert_eq!(from_replica.body, first.body);
    assert_eq!(app.stored_bookings(&event).await.len(), 2);
}

#[tokio::test]
async fn the_reconciliation_finishes_a_seat_return_a_crash_interrupted() {
    use mongodb::bson::doc;
    use myevents_store::BookingRepository;
    let app = TestApp::spawn().await;
    let event = app.announce_event(4).await;
    let booked = app
        .book(&event.to_string(), r#"{"seats":3}"#, Some("alice"))
        .await;
    assert_eq!(booked.status, StatusCode::CREATED);
    let id = booked.body["ID"].as_str().expect("ID");

    // What a crash right after marking the booking cancelled leaves: the seats not yet back.
    let store = myevents_store::mongo::MongoStore::start(&app.mongo, Vec::new())
        .await
        .expect("store");
    let an_hour_ago = chrono::Utc::now() - chrono::TimeDelta::hours(1);
    store
        .database()
        .collection::<mongodb::bson::Document>("bookings")
        .update_one(
            doc! {"_id": mongodb::bson::oid::ObjectId::parse_str(id).expect("oid")},
            doc! {"$set": {
                "cancelled_at": mongodb::bson::DateTime::from_millis(an_hour_ago.timestamp_millis()),
                "returning": true,
            }},
        )
        .await
        .expect("simulate the interrupted cancellation");
    let repository = myevents_store::mongo::MongoBookingRepository::new(&store);
    let remaining = || async {
        repository
            .inventory(event)
            .await
            .expect("read")
            .expect("known")
            .remaining
            .get()
    };
    assert!(
        eventually(WAIT, || async { remaining().await == 4 }).await,
        "the reconciliation gave the seats back"
    );
    // Once: later runs leave it at 4 while a new booking takes seats again.
    assert_eq!(
        app.book(&event.to_string(), r#"{"seats":4}"#, Some("bob"))
            .await
            .status,
        StatusCode::CREATED
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(remaining().await, 0);
}
