//! API tests of the event service, every route and every error status: the whole application
//! (middleware, use cases, consumer, outbox relay) over the in-memory adapters, each request sent to
//! its router in process (`Answer::from_router`), with authentication off and, for the checks of
//! bearer tokens and rate limits, on. What needs real servers (MongoDB lost and back,
//! a broker that refuses dead letters) is in the files beside this one and in the suite's tests.

use std::num::NonZeroU32;
use std::time::Duration;

use axum::body::Body;
use myevents_broker::memory::InMemoryBroker;
use myevents_broker::{Consumer, EventPublisher, EventSubscriber, Message, Subscription};
use myevents_domain::messages::{BookingCancelled, DomainEvent, EventBooked};
use myevents_event_service::config::EventServiceConfig;
use myevents_event_service::{Application, Dependencies};
use myevents_host::{Config, HostConfig};
use myevents_http::auth::{AuthConfig, JwtConfig, KeySource, Secret, mint_token};
use myevents_http::rate_limit::RateLimit;
use myevents_messaging::broker::Broker;
use myevents_store::factory::{EventStore, ServiceStore};
use myevents_testkit::{Answer, InProcess, Recorded, Recorder, unique};
use reqwest::StatusCode;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

struct TestApp {
    /// The service's router, called in process.
    http: InProcess,
    broker: InMemoryBroker,
    /// The service's store (shared with [`TestApp::replica`]).
    store: EventStore,
    /// Every message the service published: `locationCreated`, `locationUpdated`,
    /// `locationDeleted`, `eventCreated`, `eventUpdated` and `eventCancelled`.
    published: Recorded,
    _observer: Consumer,
}

/// The service's settings for a test: every default of the host's (authentication off, no rate
/// limit), reads kept for an hour (so that only a change can refresh them).
fn test_config() -> Config<EventServiceConfig> {
    Config {
        host: HostConfig::ephemeral(unique("events-service")),
        service: EventServiceConfig {
            read_cache_max_age: Duration::from_secs(3600),
        },
    }
}

impl TestApp {
    /// The service with [`test_config`].
    async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// The service with [`test_config`] as `configure` leaves it.
    async fn spawn_with(configure: impl FnOnce(&mut Config<EventServiceConfig>)) -> Self {
        let broker = InMemoryBroker::default();
        let observer = Subscription::new(
            unique("observer"),
            &[
                "eventCreated",
                "locationCreated",
                "locationUpdated",
                "locationDeleted",
                "eventUpdated",
                "eventCancelled",
            ],
        );
        broker
            .declare(&observer)
            .await
            .expect("declare observer queue");
        let (recorder, published) = Recorder::new();
        let observer = broker
            .subscribe(&observer, recorder)
            .await
            .expect("observe");
        let mut config = test_config();
        configure(&mut config);
        let store = EventStore::in_memory();
        let router = start(&config, store.clone(), Broker::in_memory(&broker)).await;
        Self {
            http: InProcess(router),
            broker,
            store,
            published,
            _observer: observer,
        }
    }

    /// Another instance of the service on the same store (its own queue and broker), its reads
    /// kept for at most `max_age`: a second replica.
    async fn replica(&self, max_age: Duration) -> InProcess {
        let mut config = test_config();
        config.service.read_cache_max_age = max_age;
        let broker = Broker::in_memory(&InMemoryBroker::default());
        InProcess(start(&config, self.store.clone(), broker).await)
    }

    /// Waits until the event at `path` shows `seats` as its `SeatsAvailable`.
    async fn await_seats_available(&self, path: &str, seats: i64) {
        let reached = myevents_testkit::eventually(WAIT, || async {
            self.http.get(path).await.body["SeatsAvailable"] == seats
        })
        .await;
        assert!(
            reached,
            "SeatsAvailable: {}, not {seats}",
            self.http.get(path).await.body["SeatsAvailable"]
        );
    }

    async fn post(&self, path: &str, body: &Value) -> Answer {
        self.post_raw(path, "application/json", body.to_string())
            .await
    }

    async fn post_raw(&self, path: &str, content_type: &str, body: String) -> Answer {
        self.http
            .request("POST", path, &[("content-type", content_type)], body)
            .await
    }

    /// Creates a location and an event named `name` at it; returns the location's id.
    async fn create_event(&self, name: &str) -> String {
        let location = self.create_location().await;
        let location_id = location["ID"].as_str().expect("ID").to_owned();
        self.create_event_at(&location_id, name).await;
        location_id
    }

    /// Creates an event named `name` at the stored location `location_id`.
    async fn create_event_at(&self, location_id: &str, name: &str) {
        let mut event = aida(location_id);
        event["Name"] = json!(name);
        let created = self.post("/events", &event).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    }

    async fn create_location(&self) -> Value {
        let answer = self.post("/locations", &west_hall()).await;
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
        answer.body
    }
}

/// Starts the service with `config` over `store` and `broker`; returns its router. The consumer and
/// the outbox relay run; the listener is never called.
async fn start(
    config: &Config<EventServiceConfig>,
    store: EventStore,
    broker: Broker,
) -> myevents_http::layers::App {
    let app = Application::build(config, Dependencies { store, broker })
        .await
        .expect("build");
    let router = app.router();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    router
}

fn west_hall() -> Value {
    json!({"Name":"West Hall","Address":"1 Main St","Country":"DE","OpenTime":8,"CloseTime":22,
        "Halls":[{"name":"A","location":"1st floor","capacity":100},{"name":"B","capacity":50}]})
}

fn aida(location_id: &str) -> Value {
    json!({"Name":"opera aida","Duration":120,"StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
        "Location":{"ID":location_id}})
}

/// The `ID`s of a listing's items, in order.
fn ids(listing: &Answer) -> Vec<Value> {
    listing
        .body
        .as_array()
        .expect("array")
        .iter()
        .map(|item| item["ID"].clone())
        .collect()
}

fn assert_problem(answer: &Answer, status: StatusCode) {
    answer.assert_problem(status);
}

fn invalid_fields(answer: &Answer) -> Vec<String> {
    assert_problem(answer, StatusCode::UNPROCESSABLE_ENTITY);
    answer.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["field"].as_str().expect("field").to_owned())
        .collect()
}

#[tokio::test]
async fn creating_a_location_answers_201_with_its_id_and_announces_it() {
    let mut app = TestApp::spawn().await;
    let answer = app.post("/locations", &west_hall()).await;
    assert_eq!(answer.status, StatusCode::CREATED);
    let id = answer.body["ID"].as_str().expect("ID").to_owned();
    assert_eq!(id.len(), 24);
    assert_eq!(
        answer.headers["location"],
        format!("/locations/{id}").as_str()
    );
    let mut expected = west_hall();
    expected["ID"] = json!(id);
    assert_eq!(answer.body, expected);

    let message = app.published.next(WAIT).await;
    assert_eq!(message.name, "locationCreated");
    assert_eq!(message.key, id);
    let body: Value = serde_json::from_slice(&message.payload).expect("json");
    assert_eq!(
        body,
        json!({"id": id, "name":"West Hall","address":"1 Main St","country":"DE",
            "halls":[{"name":"A","location":"1st floor","capacity":100},{"name":"B","capacity":50}]})
    );
    assert_eq!(
        app.http.get(&format!("/locations/{id}")).await.body,
        expected
    );
}

#[tokio::test]
async fn invalid_locations_are_422_naming_each_field() {
    let app = TestApp::spawn().await;
    let answer = app
        .post(
            "/locations",
            &json!({"Name":"","OpenTime":25,"Halls":[{"name":"A","capacity":-1},{"capacity":5}]}),
        )
        .await;
    assert_eq!(
        invalid_fields(&answer),
        ["Name", "OpenTime", "Halls[0].capacity", "Halls[1].name"]
    );
    // `ID` is ignored on a new location, but not when it is no id at all.
    let answer = app
        .post("/locations", &json!({"ID": 5, "Name": "West Hall"}))
        .await;
    assert_eq!(invalid_fields(&answer), ["ID"]);
}

#[tokio::test]
async fn malformed_bodies_are_400_and_foreign_media_types_415() {
    let app = TestApp::spawn().await;
    assert_problem(
        &app.post_raw("/locations", "application/json", "{\"Name\":".to_owned())
            .await,
        StatusCode::BAD_REQUEST,
    );
    assert_problem(
        &app.post_raw("/events", "application/json", "[]".to_owned())
            .await,
        StatusCode::BAD_REQUEST,
    );
    assert_problem(
        &app.post_raw("/locations", "application/xml", "<x/>".to_owned())
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
    );
    let wrong_type = app
        .post("/events", &json!({"Name":"x","Duration":"long"}))
        .await;
    assert_problem(&wrong_type, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn an_event_at_a_stored_location_embeds_it_and_sums_its_halls() {
    let mut app = TestApp::spawn().await;
    let location = app.create_location().await;
    let location_id = location["ID"].as_str().expect("ID");
    let _ = app.published.next(WAIT).await; // locationCreated
    let answer = app.post("/events", &aida(location_id)).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    let id = answer.body["ID"].as_str().expect("ID").to_owned();
    assert_eq!(answer.headers["location"], format!("/events/{id}").as_str());
    assert_eq!(answer.body["Name"], "opera aida");
    assert_eq!(answer.body["Duration"], 120);
    assert_eq!(answer.body["StartDate"], 1_768_000_000_i64);
    assert_eq!(answer.body["EndDate"], 1_768_007_200_i64);
    assert_eq!(answer.body["Location"], location);
    assert_eq!(answer.body["Capacity"], 150);

    let message = app.published.next(WAIT).await;
    assert_eq!(message.name, "eventCreated");
    assert_eq!(message.key, id);
    assert_eq!(
        String::from_utf8(message.payload).expect("utf8"),
        format!(
            r#"{{"id":"{id}","name":"opera aida","location_id":"{location_id}","start_date":"2026-01-09T23:06:40Z","end_date":"2026-01-10T01:06:40Z","capacity":150,"location_name":"West Hall","organiser":"anonymous"}}"#
        )
    );

    for path in [format!("/events/{id}"), format!("/events/id/{id}")] {
        let read = app.http.get(&path).await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.body, answer.body);
    }
    let by_name = app.http.get("/events/name/opera%20aida").await;
    assert_eq!(by_name.body, answer.body);
    let all = app.http.get("/events").await;
    assert_eq!(all.body, json!([answer.body]));
}

#[tokio::test]
async fn keys_match_case_insensitively_and_ids_may_be_oid_objects() {
    let app = TestApp::spawn().await;
    let location = app.create_location().await;
    let answer = app
        .post(
            "/events",
            &json!({"name":"tosca","DURATION":90,"startdate":100,"EndDate":200,"hall":"B",
                "location":{"id":{"$oid": location["ID"]}}, "unknown": true}),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["Duration"], 90);
    assert_eq!(answer.body["Hall"], "B");
    assert_eq!(answer.body["Capacity"], 50);
}

#[tokio::test]
async fn an_inline_location_is_stored_with_the_event_and_capacity_can_be_explicit() {
    let app = TestApp::spawn().await;
    let mut body = aida("");
    body["Location"] = west_hall();
    body["Capacity"] = json!(10);
    let answer = app.post("/events", &body).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.body);
    assert_eq!(answer.body["Capacity"], 10);
    let location_id = answer.body["Location"]["ID"].as_str().expect("ID");
    assert_eq!(
        app.http
            .get(&format!("/locations/{location_id}"))
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn invalid_events_are_422_naming_each_field() {
    let app = TestApp::spawn().await;
    let location = app.create_location().await;
    let id = location["ID"].as_str().expect("ID");

    let mut unknown_hall = aida(id);
    unknown_hall["Hall"] = json!("Z");
    assert_eq!(
        invalid_fields(&app.post("/events", &unknown_hall).await),
        ["Hall"]
    );

    let mut broken = aida(id);
    broken["Name"] = json!(" ");
    broken["Duration"] = json!(-1);
    broken["StartDate"] = json!(500);
    broken["EndDate"] = json!(100);
    broken["Capacity"] = json!(-4);
    assert_eq!(
        invalid_fields(&app.post("/events", &broken).await),
        ["Name", "Duration", "EndDate", "Capacity"]
    );

    let unknown_location = aida("000000000000000000000000");
    assert_eq!(
        invalid_fields(&app.post("/events", &unknown_location).await),
        ["Location.ID"]
    );
    assert_eq!(
        invalid_fields(&app.post("/events", &aida("not-an-id")).await),
        ["Location.ID"]
    );
    let mut no_location = aida(id);
    no_location
        .as_object_mut()
        .expect("object")
        .remove("Location");
    assert_eq!(
        invalid_fields(&app.post("/events", &no_location).await),
        ["Location"]
    );

    let mut no_halls = aida("");
    no_halls["Location"] = json!({"Name": "Empty Hall"});
    assert_eq!(
        invalid_fields(&app.post("/events", &no_halls).await),
        ["Capacity"]
    );

    let mut no_dates = aida(id);
    no_dates
        .as_object_mut()
        .expect("object")
        .remove("StartDate");
    assert_eq!(
        invalid_fields(&app.post("/events", &no_dates).await),
        ["StartDate"]
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids_and_names_are_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/events/000000000000000000000000",
        "/events/id/000000000000000000000000",
        "/events/not-an-id",
        "/events/id/",
        "/events/name/nothing",
        "/locations/000000000000000000000000",
        "/locations/zzz",
        "/nowhere",
    ] {
        assert_problem(&app.http.get(path).await, StatusCode::NOT_FOUND);
    }
    assert_problem(
        &app.http
            .request("DELETE", "/events", &[], Body::empty())
            .await,
        StatusCode::METHOD_NOT_ALLOWED,
    );
}

#[tokio::test]
async fn listings_page_with_limit_and_a_next_link() {
    let app = TestApp::spawn().await;
    let location = app.create_location().await;
    let id = location["ID"].as_str().expect("ID");
    let mut created = Vec::new();
    for i in 0..5 {
        let mut body = aida(id);
        body["Name"] = json!(format!("show {i}"));
        created.push(app.post("/events", &body).await.body["ID"].clone());
    }
    let first = app.http.get("/events?limit=2").await;
    assert_eq!(first.status, StatusCode::OK);
    let names = ids(&first);
    assert_eq!(names, created[..2]);
    let link = first.headers["link"].to_str().expect("link").to_owned();
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .expect("target")
        .to_owned();
    let second = app.http.get(&next).await;
    let ids = ids(&second);
    assert_eq!(ids, created[2..4]);
    let last = app
        .http
        .get(&format!(
            "/events?limit=2&after={}",
            created[3].as_str().expect("id")
        ))
        .await;
    assert_eq!(last.body.as_array().expect("array").len(), 1);
    assert!(last.headers.get("link").is_none());

    assert_eq!(
        app.http
            .get("/locations")
            .await
            .body
            .as_array()
            .expect("array")
            .len(),
        1
    );
    assert_eq!(
        invalid_fields(&app.http.get("/events?limit=0").await),
        ["limit"]
    );
    assert_eq!(
        invalid_fields(&app.http.get("/events?limit=1001").await),
        ["limit"]
    );
    assert_eq!(
        invalid_fields(&app.http.get("/locations?after=xyz").await),
        ["after"]
    );
}

#[tokio::test]
async fn cors_answers_the_frontend_from_another_origin() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get_with("/events", &[("origin", "http://localhost")])
        .await;
    assert_eq!(response.status, StatusCode::OK);
    assert_eq!(response.headers["access-control-allow-origin"], "*");
    let vary = "origin, access-control-request-method, access-control-request-headers";
    assert_eq!(response.headers["vary"], vary);
    // A client that sends no `Origin` gets no CORS headers, and the same `Vary`, so that a cache
    // keeps its answer apart from a browser's.
    let plain = app.http.get("/events").await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(!plain.headers.contains_key("access-control-allow-origin"));
    assert_eq!(plain.headers["vary"], vary);

    let preflight = app
        .http
        .request(
            "OPTIONS",
            "/events",
            &[
                ("origin", "http://localhost:3000"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "content-type"),
            ],
            Body::empty(),
        )
        .await;
    assert!(preflight.status.is_success());
    assert_eq!(preflight.headers["access-control-allow-origin"], "*");
    assert_eq!(preflight.headers["vary"], vary);
    let methods = preflight.headers["access-control-allow-methods"]
        .to_str()
        .expect("methods")
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    assert!(
        methods.contains("PATCH"),
        "an edit from a browser: {methods}"
    );
    let allowed = preflight.headers["access-control-allow-headers"]
        .to_str()
        .expect("headers")
        .to_owned();
    assert!(allowed.contains("if-match"), "{allowed}");
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_echoes_the_clients() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get_with("/events", &[("x-request-id", "abc-123")])
        .await;
    assert_eq!(response.headers["x-request-id"], "abc-123");
    let fresh = app.http.get("/healthz").await;
    assert_eq!(fresh.status, StatusCode::OK);
    assert_eq!(
        fresh.headers["x-request-id"].to_str().expect("id").len(),
        36
    );
}

#[tokio::test]
async fn booked_and_cancelled_seats_announced_by_the_booking_service_move_seats_available_once_per_message()
 {
    let app = TestApp::spawn().await;
    let location = app.create_location().await;
    let event = app
        .post("/events", &aida(location["ID"].as_str().expect("ID")))
        .await;
    assert_eq!(event.body["SeatsAvailable"], 150);
    let id = event.body["ID"].as_str().expect("ID").to_owned();
    let booked = |seats: u32| {
        let event_id = myevents_domain::id::EventId::parse(&id).expect("id");
        let body = DomainEvent::EventBooked(EventBooked {
            event_id,
            user_id: "alice".to_owned(),
            booking_id: None,
            seats: Some(seats),
            booked_at: None,
        });
        Message::new(body.name(), body.key(), body.to_json())
    };
    let first = booked(3);
    app.broker.publish(&first).await.expect("publish");
    app.broker
        .publish(&first)
        .await
        .expect("publish again (a redelivery)");
    app.broker.publish(&booked(2)).await.expect("publish");
    // Reads are kept for an hour here: the consumer's count shows at once all the same.
    let path = format!("/events/{id}");
    app.await_seats_available(&path, 145).await;
    // The listing says the same.
    assert_eq!(app.http.get("/events").await.body[0]["SeatsAvailable"], 145);

    // A cancellation gives its seats back.
    let cancelled = DomainEvent::BookingCancelled(BookingCancelled {
        booking_id: myevents_domain::id::BookingId::generate(),
        event_id: myevents_domain::id::EventId::parse(&id).expect("id"),
        user_id: "alice".to_owned(),
        seats: 2,
        cancelled_at: chrono::Utc::now(),
        reason: None,
    });
    app.broker
        .publish(&Message::new(
            cancelled.name(),
            cancelled.key(),
            cancelled.to_json(),
        ))
        .await
        .expect("publish");
    app.await_seats_available(&path, 147).await;
}

/// Publishes an `eventBooked` of `seats` seats of event `id` to the service's broker.
async fn announce_booked(app: &TestApp, id: &str, seats: u32) {
    let body = DomainEvent::EventBooked(EventBooked {
        event_id: myevents_domain::id::EventId::parse(id).expect("id"),
        user_id: "alice".to_owned(),
        booking_id: None,
        seats: Some(seats),
        booked_at: None,
    });
    app.broker
        .publish(&Message::new(body.name(), body.key(), body.to_json()))
        .await
        .expect("publish");
}

/// Sends `method` to `path` with `body` (JSON; none for `null`) and `headers`.
async fn send(
    http: &InProcess,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Value,
) -> Answer {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    let body = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    http.request(method, path, &all, body).await
}

/// The next published message named `name`, skipping others.
async fn next_published(app: &mut TestApp, name: &str) -> Value {
    loop {
        let message = app.published.next(WAIT).await;
        if message.name == name {
            return serde_json::from_slice(&message.payload).expect("JSON body");
        }
    }
}

#[tokio::test]
async fn an_organiser_renames_extends_and_deletes_a_location_with_if_match() {
    let mut app = TestApp::spawn().await;
    let http = app.http.clone();
    let location = app.create_location().await;
    let id = location["ID"].as_str().expect("ID").to_owned();
    let path = format!("/locations/{id}");
    let read = http.get(&path).await;
    let tag = etag(&read);
    let halls = |a: u32, b: u32| json!([{"name": "A", "location": "1st floor", "capacity": a}, {"name": "B", "capacity": b}]);
    // Each of these is a problem, and the location stays as it was.
    let stale = send(
        &http,
        "PATCH",
        &path,
        &[("if-match", "\"stale\"")],
        json!({"Name": "x"}),
    );
    assert_problem(&stale.await, StatusCode::PRECONDITION_FAILED);
    let removed = send(
        &http,
        "PATCH",
        &path,
        &[],
        json!({"Halls": [halls(100, 50)[0]]}),
    )
    .await;
    assert_problem(&removed, StatusCode::CONFLICT);
    let shrunk = send(&http, "PATCH", &path, &[], json!({"Halls": halls(100, 49)})).await;
    assert_problem(&shrunk, StatusCode::CONFLICT);
    assert!(
        shrunk.body["detail"]
            .as_str()
            .expect("detail")
            .contains("\"B\" (Halls[1]) has 50 seats"),
        "{}",
        shrunk.body
    );
    let invalid = send(
        &http,
        "PATCH",
        &path,
        &[],
        json!({"Name": " ", "OpenTime": 24}),
    )
    .await;
    assert_eq!(invalid_fields(&invalid), ["Name", "OpenTime"]);
    let mallory = [("x-user-id", "mallory")];
    assert_problem(
        &send(&http, "PATCH", &path, &mallory, json!({"Name": "x"})).await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(
        &send(&http, "DELETE", &path, &mallory, Value::Null).await,
        StatusCode::FORBIDDEN,
    );
    let unknown = format!("/locations/{}", myevents_domain::id::LocationId::generate());
    assert_problem(
        &send(&http, "PATCH", &unknown, &[], json!({})).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(http.get(&path).await.body, read.body);

    // Renamed, a hall grown and one added: the new copy, its `ETag`, listed, announced.
    let mut grown = halls(120, 50);
    grown
        .as_array_mut()
        .expect("halls")
        .push(json!({"name": "Annex", "capacity": 40}));
    let changed = send(
        &http,
        "PATCH",
        &path,
        &[("if-match", tag.as_str())],
        json!({"name": "West Hall and Annex", "halls": grown}),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["Name"], "West Hall and Annex");
    assert_eq!(changed.body["Halls"][2]["capacity"], 40);
    assert_eq!(changed.body["Address"], "1 Main St", "absent fields stay");
    let new_tag = etag(&changed);
    assert_eq!(etag(&http.get(&path).await), new_tag);
    assert_eq!(http.get("/locations").await.body[0], changed.body);
    let updated = next_published(&mut app, "locationUpdated").await;
    assert_eq!(
        (&updated["id"], &updated["revision"]),
        (&json!(id), &json!(1))
    );
    assert_eq!(updated["halls"][0]["capacity"], 120);

    // An event to come keeps it; once that event is cancelled, it goes (with the current copy).
    let mut future = aida(&id);
    future["StartDate"] = json!(4_000_000_000_i64);
    future["EndDate"] = json!(4_000_007_200_i64);
    let event = app.post("/events", &future).await;
    assert_eq!(event.status, StatusCode::CREATED, "{}", event.body);
    let event_id = event.body["ID"].as_str().expect("ID");
    let in_use = send(&http, "DELETE", &path, &[], Value::Null).await;
    assert_problem(&in_use, StatusCode::CONFLICT);
    assert!(
        in_use.body["detail"]
            .as_str()
            .expect("detail")
            .contains(event_id),
        "{}",
        in_use.body
    );
    let cancel = format!("/events/{event_id}/cancellation");
    let cancelled = send(&http, "POST", &cancel, &[], json!({})).await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_problem(
        &send(
            &http,
            "DELETE",
            &path,
            &[("if-match", tag.as_str())],
            Value::Null,
        )
        .await,
        StatusCode::PRECONDITION_FAILED,
    );
    let deleted = send(
        &http,
        "DELETE",
        &path,
        &[("if-match", new_tag.as_str())],
        Value::Null,
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    assert_problem(&http.get(&path).await, StatusCode::NOT_FOUND);
    assert_eq!(http.get("/locations").await.body, json!([]));
    assert_problem(
        &send(&http, "DELETE", &path, &[], Value::Null).await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(
        invalid_fields(&app.post("/events", &aida(&id)).await),
        ["Location.ID"]
    );
    let deletion = next_published(&mut app, "locationDeleted").await;
    assert_eq!(
        (&deletion["id"], &deletion["revision"]),
        (&json!(id), &json!(2))
    );
    assert_eq!(
        http.get(&format!("/events/{event_id}")).await.body["Location"]["Name"],
        "West Hall and Annex",
        "an event keeps its copy of the location"
    );
}

#[tokio::test]
async fn an_organiser_changes_an_event_with_if_match_and_bad_changes_are_problems_that_change_nothing()
 {
    let mut app = TestApp::spawn().await;
    let http = app.http.clone();
    let location = app.create_location().await;
    let created = app
        .post("/events", &aida(location["ID"].as_str().expect("ID")))
        .await;
    let id = created.body["ID"].as_str().expect("ID").to_owned();
    let path = format!("/events/{id}");
    announce_booked(&app, &id, 30).await;
    app.await_seats_available(&path, 120).await;
    let read = app.http.get(&path).await;
    let tag = etag(&read);
    let patch = |body: Value, headers: Vec<(&'static str, String)>| {
        let http = http.clone();
        let path = path.clone();
        async move {
            let mut all = vec![("content-type", "application/json".to_owned())];
            all.extend(headers);
            let borrowed: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            http.request("PATCH", &path, &borrowed, body.to_string())
                .await
        }
    };
    let if_match = |tag: &str| vec![("if-match", tag.to_owned())];
    // Each of these is a problem, and the event stays as it was.
    assert_problem(
        &patch(json!({"Name": "x"}), if_match("\"stale\"")).await,
        StatusCode::PRECONDITION_FAILED,
    );
    assert_problem(
        &patch(json!({"Name": "x"}), if_match(&format!("W/{tag}"))).await,
        StatusCode::PRECONDITION_FAILED,
    );
    assert_eq!(
        invalid_fields(&patch(json!({"Name": " ", "EndDate": 1}), if_match(&tag)).await),
        ["Name", "EndDate"]
    );
    let below = patch(json!({"Capacity": 29}), if_match(&tag)).await;
    assert_problem(&below, StatusCode::CONFLICT);
    assert!(
        below.body["detail"]
            .as_str()
            .expect("detail")
            .contains("30 seats are booked"),
        "{}",
        below.body
    );
    assert_problem(
        &patch(
            json!({"Name": "x"}),
            vec![("x-user-id", "mallory".to_owned())],
        )
        .await,
        StatusCode::FORBIDDEN,
    );
    assert_problem(
        &http
            .request(
                "PATCH",
                &format!("/events/{}", myevents_domain::id::EventId::generate()),
                &[("content-type", "application/json")],
                "{}",
            )
            .await,
        StatusCode::NOT_FOUND,
    );
    assert_eq!(app.http.get(&path).await.body, read.body);

    // A change with the current copy: answered with the new copy and its `ETag`, announced.
    let changed = patch(
        json!({"name": "opera tosca", "Capacity": 30}),
        if_match(&tag),
    )
    .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["Name"], "opera tosca");
    assert_eq!(changed.body["SeatsAvailable"], 0);
    let new_tag = etag(&changed);
    assert_eq!(
        etag(&app.http.get(&path).await),
        new_tag,
        "a read answers the same copy"
    );
    assert_eq!(app.http.get(&path).await.body, changed.body);
    let mut names = Vec::new();
    while !names.contains(&"eventUpdated".to_owned()) {
        names.push(app.published.next(WAIT).await.name);
    }

    // Cancelled: kept and listed as cancelled; changes and a reason with control characters refused.
    let cancellation = format!("{path}/cancellation");
    assert_eq!(
        invalid_fields(
            &http
                .request("POST", &cancellation, &[], r#"{"Reason": "a\u0007b"}"#)
                .await
        ),
        ["Reason"]
    );
    assert_problem(
        &http
            .request("POST", &cancellation, &[("if-match", tag.as_str())], "")
            .await,
        StatusCode::PRECONDITION_FAILED,
    );
    let cancelled = http
        .request(
            "POST",
            &cancellation,
            &[("if-match", new_tag.as_str())],
            r#"{"Reason": "the soloist is ill"}"#,
        )
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(cancelled.body["CancellationReason"], "the soloist is ill");
    assert!(cancelled.body["CancelledAt"].is_i64());
    assert_eq!(app.http.get("/events").await.body[0], cancelled.body);
    assert_eq!(
        invalid_fields(
            &http
                .request("POST", &cancellation, &[], r#"{"Reason": "a\u0007b"}"#)
                .await
        ),
        ["Reason"],
        "a reason is checked also when the event is cancelled already"
    );
    let again = http.request("POST", &cancellation, &[], "").await;
    assert_eq!(
        (again.status, &again.body),
        (StatusCode::OK, &cancelled.body)
    );
    assert_problem(
        &patch(json!({"Name": "back on"}), Vec::new()).await,
        StatusCode::CONFLICT,
    );
    let mut names = Vec::new();
    while !names.contains(&"eventCancelled".to_owned()) {
        names.push(app.published.next(WAIT).await.name);
    }
}

#[tokio::test]
async fn posts_with_an_idempotency_key_create_once_and_replay_the_first_answer() {
    let mut app = TestApp::spawn().await;
    let post = |path: &'static str, key: &'static str, body: Value| {
        let app = &app;
        async move {
            app.http
                .request(
                    "POST",
                    path,
                    &[
                        ("idempotency-key", key),
                        ("x-user-id", "organiser"),
                        ("content-type", "application/json"),
                    ],
                    body.to_string(),
                )
                .await
        }
    };
    let location = post("/locations", "loc-1", west_hall()).await;
    assert_eq!(location.status, StatusCode::CREATED, "{}", location.body);
    let again = post("/locations", "loc-1", west_hall()).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, location.body);
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let location_id = location.body["ID"].as_str().expect("ID").to_owned();

    // An event with an inline location: both are created once.
    let mut inline = aida(&location_id);
    inline["Location"] = west_hall();
    let attempts = (0..5).map(|_| post("/events", "ev-1", inline.clone()));
    let answers = futures_util::future::join_all(attempts).await;
    let created: std::collections::BTreeSet<String> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .map(|a| a.body["ID"].as_str().expect("ID").to_owned())
        .collect();
    assert_eq!(created.len(), 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| a.status == StatusCode::CREATED || a.status == StatusCode::CONFLICT)
    );
    let replay = post("/events", "ev-1", inline.clone()).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    let event_id = replay.body["ID"].as_str().expect("ID").to_owned();
    assert!(created.contains(&event_id));
    let changed = post("/events", "ev-1", aida(&location_id)).await;
    assert_problem(&changed, StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(listed(&app.http, "/events").await, 1);
    assert_eq!(
        app.http
            .get("/locations")
            .await
            .body
            .as_array()
            .expect("list")
            .len(),
        2
    );

    // Announced once each: locationCreated (POST /locations), locationCreated and eventCreated (the
    // event), then nothing of theirs before a later marker location.
    let mut names = Vec::new();
    for _ in 0..3 {
        names.push(app.published.next(WAIT).await.name);
    }
    names.sort();
    assert_eq!(
        names,
        ["eventCreated", "locationCreated", "locationCreated"]
    );
    let marker = app.post("/locations", &west_hall()).await;
    let next = app.published.next(WAIT).await;
    let body: Value = serde_json::from_slice(&next.payload).expect("json");
    assert_eq!(body["id"], marker.body["ID"], "{body}");
}

/// Tokens as an identity provider signs them for the service's `AUTH_MODE=jwt` with an HS256 secret.
struct Tokens(JwtConfig);

impl Tokens {
    fn new() -> Self {
        Self(JwtConfig::new(
            KeySource::Hs256(Secret::new("an HS256 secret of 32 bytes or more")),
            "https://id.example",
            "myevents",
        ))
    }

    /// `Authorization: Bearer <token>` for `user` with `roles`, valid for a minute.
    fn bearer(&self, user: &str, roles: &[&str]) -> String {
        let roles: Vec<String> = roles.iter().map(|role| (*role).to_owned()).collect();
        let token = mint_token(&self.0, user, &roles, Duration::from_secs(60)).expect("token");
        format!("Bearer {token}")
    }
}

#[tokio::test]
async fn with_jwt_reads_are_public_and_writes_need_an_organisers_verified_token() {
    let tokens = Tokens::new();
    let app =
        TestApp::spawn_with(|config| config.host.auth = AuthConfig::Jwt(tokens.0.clone())).await;
    let post = |headers: Vec<(&'static str, String)>| {
        let http = app.http.clone();
        async move {
            let mut headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            headers.push(("content-type", "application/json"));
            http.request("POST", "/locations", &headers, west_hall().to_string())
                .await
        }
    };
    assert_eq!(app.http.get("/events").await.status, StatusCode::OK);

    let anonymous = post(vec![]).await;
    assert_problem(&anonymous, StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.headers["www-authenticate"],
        "Bearer realm=\"myevents\""
    );
    // X-User-Id names nobody once tokens are on.
    assert_problem(
        &post(vec![("x-user-id", "alice".to_owned())]).await,
        StatusCode::UNAUTHORIZED,
    );
    let forged = post(vec![("authorization", "Bearer not.a.jwt".to_owned())]).await;
    assert_problem(&forged, StatusCode::UNAUTHORIZED);
    let challenge = forged.headers["www-authenticate"].to_str().expect("header");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let other_secret = Tokens(JwtConfig {
        keys: KeySource::Hs256(Secret::new("another HS256 secret of 32 bytes!!")),
        ..tokens.0.clone()
    });
    assert_problem(
        &post(vec![(
            "authorization",
            other_secret.bearer("alice", &["organiser"]),
        )])
        .await,
        StatusCode::UNAUTHORIZED,
    );
    assert_problem(
        &post(vec![("authorization", tokens.bearer("alice", &[]))]).await,
        StatusCode::FORBIDDEN,
    );
    let created = post(vec![(
        "authorization",
        tokens.bearer("alice", &["organiser"]),
    )])
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
}

#[tokio::test]
async fn a_caller_over_its_rate_limit_gets_429_with_retry_after_and_others_go_on() {
    let tokens = Tokens::new();
    let app = TestApp::spawn_with(|config| {
        config.host.auth = AuthConfig::Jwt(tokens.0.clone());
        config.host.server.rate_limit = Some(RateLimit {
            per_second: NonZeroU32::new(1).expect("1"),
            burst: NonZeroU32::new(2).expect("2"),
            trusted_proxy_hops: 0,
        });
    })
    .await;
    let alice = tokens.bearer("alice", &[]);
    let bob = tokens.bearer("bob", &[]);
    let as_alice = [("authorization", alice.as_str())];
    for _ in 0..2 {
        assert_eq!(
            app.http.get_with("/events", &as_alice).await.status,
            StatusCode::OK
        );
    }
    let refused = app.http.get_with("/events", &as_alice).await;
    assert_problem(&refused, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers["retry-after"], "1");
    // Callers are told apart by their token's subject, not their address.
    assert_eq!(
        app.http
            .get_with("/events", &[("authorization", bob.as_str())])
            .await
            .status,
        StatusCode::OK
    );
    // The probes are outside the limit.
    assert_eq!(app.http.get("/healthz").await.status, StatusCode::OK);
}

/// How many items the listing at `path` shows.
async fn listed(http: &InProcess, path: &str) -> usize {
    http.get(path).await.body.as_array().map_or(0, Vec::len)
}

/// The `ETag` of `answer`.
fn etag(answer: &Answer) -> String {
    answer.headers["etag"].to_str().expect("etag").to_owned()
}

#[tokio::test]
async fn reads_carry_an_etag_and_answer_304_while_it_still_matches() {
    let app = TestApp::spawn().await;
    let location = app.create_location().await;
    let location_id = location["ID"].as_str().expect("ID");
    let event = app.post("/events", &aida(location_id)).await.body;
    let id = event["ID"].as_str().expect("ID");
    for path in [
        "/events".to_owned(),
        format!("/events/{id}"),
        format!("/events/id/{id}"),
        "/locations".to_owned(),
    ] {
        let first = app.http.get(&path).await;
        assert_eq!(first.status, StatusCode::OK, "{path}");
        let tag = etag(&first);
        assert!(tag.starts_with('"') && tag.len() == 34, "{path}: {tag}");
        let weak = format!("W/{tag}");
        for held in [tag.as_str(), weak.as_str(), "\"other\", *"] {
            let again = app.http.get_with(&path, &[("if-none-match", held)]).await;
            assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path} {held}");
            assert_eq!(etag(&again), tag);
            assert_eq!(again.body, Value::String(String::new()));
        }
        let other = app
            .http
            .get_with(&path, &[("if-none-match", "\"other\"")])
            .await;
        assert_eq!(other.status, StatusCode::OK);
        assert_eq!(
            other.body, first.body,
            "{path}: the kept answer is the same"
        );
        assert_eq!(
            other.headers["content-type"], first.headers["content-type"],
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_kept_answer_is_served_before_the_rate_limit_and_nothing_else_is() {
    let app = TestApp::spawn_with(|config| {
        config.host.server.rate_limit = Some(RateLimit {
            per_second: NonZeroU32::new(1).expect("1"),
            burst: NonZeroU32::new(4).expect("4"),
            trusted_proxy_hops: 0,
        });
    })
    .await;
    // The address's whole burst: a location, an event and two reads, whose answers are kept.
    let location_id = app.create_event("opera aida").await;
    let read = app.http.get("/events").await;
    assert_eq!(read.status, StatusCode::OK);
    let tag = etag(&read);
    assert_eq!(
        app.http.get("/events?limit=10").await.status,
        StatusCode::OK
    );
    assert_problem(
        &app.http.get("/events?limit=7").await,
        StatusCode::TOO_MANY_REQUESTS,
    );
    // Kept answers cost less than the limit's own bookkeeping: served, and revalidated.
    for _ in 0..3 {
        let again = app.http.get("/events").await;
        assert_eq!(again.status, StatusCode::OK);
        assert_eq!(again.body, read.body);
        assert_eq!(etag(&again), tag);
        assert_eq!(again.headers["content-type"], read.headers["content-type"]);
        let not_modified = app
            .http
            .get_with("/events", &[("if-none-match", tag.as_str())])
            .await;
        assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
        assert_eq!(etag(&not_modified), tag);
    }
    assert_eq!(
        app.http.get("/events?limit=10").await.status,
        StatusCode::OK
    );
    // Anything else goes its whole way: a page not kept, credentials, a write.
    for (path, headers) in [
        ("/events?limit=7", vec![]),
        ("/events", vec![("x-user-id", "alice")]),
        ("/events", vec![("authorization", "Bearer x.y.z")]),
    ] {
        let refused = app.http.get_with(path, &headers).await;
        assert_problem(&refused, StatusCode::TOO_MANY_REQUESTS);
    }
    assert_problem(
        &app.post("/events", &aida(&location_id)).await,
        StatusCode::TOO_MANY_REQUESTS,
    );
    // A change on this replica ends the kept answers at once.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.create_event_at(&location_id, "opera tosca").await;
    assert_problem(
        &app.http.get("/events").await,
        StatusCode::TOO_MANY_REQUESTS,
    );
}

/// `myevents_http_requests_total` of the event service's `GET`s of `route` answered `status`.
fn gets_counted(route: &str, status: &str) -> u64 {
    myevents_http::metrics::HttpMetrics::registered()
        .requests
        .with_label_values(&["event-service", "GET", route, status])
        .get()
}

#[tokio::test]
async fn a_kept_answer_is_counted_under_its_route_template() {
    let app = TestApp::spawn().await;
    app.create_event("opera aida").await;
    let listing = app.http.get("/events").await;
    let id = listing.body[0]["ID"].as_str().expect("id").to_owned();
    let one = app.http.get(&format!("/events/{id}")).await;
    let counted = || {
        [
            ("/events", "200"),
            ("/events", "304"),
            ("/events/{id}", "200"),
            ("/events/{id}", "304"),
            ("unmatched", "200"),
            ("unmatched", "304"),
        ]
        .map(|(route, status)| gets_counted(route, status))
    };
    let before = counted();
    // Kept answers, served in front of the router: 200s, and 304s to their `ETag`.
    for _ in 0..3 {
        assert_eq!(app.http.get("/events").await.status, StatusCode::OK);
        let path = format!("/events/{id}");
        assert_eq!(app.http.get(&path).await.status, StatusCode::OK);
        for (path, held) in [("/events", &listing), (path.as_str(), &one)] {
            let again = app
                .http
                .get_with(path, &[("if-none-match", etag(held).as_str())])
                .await;
            assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        }
    }
    let added: Vec<u64> = counted().iter().zip(before).map(|(a, b)| a - b).collect();
    assert_eq!(added, [3, 3, 3, 3, 0, 0], "by route and status");
}

#[tokio::test]
async fn a_write_on_this_replica_is_served_at_once() {
    let app = TestApp::spawn().await;
    let location_id = app.create_event("opera aida").await;
    let before = app.http.get("/events").await;
    assert_eq!(listed(&app.http, "/events").await, 1);

    app.create_event_at(&location_id, "opera tosca").await;
    let after = app
        .http
        .get_with("/events", &[("if-none-match", etag(&before).as_str())])
        .await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(after.body.as_array().expect("list").len(), 2);
    assert_ne!(etag(&after), etag(&before));
}

#[tokio::test]
async fn another_replica_serves_a_change_within_its_bound() {
    let app = TestApp::spawn().await;
    let location_id = app.create_event("opera aida").await;
    let bound = Duration::from_millis(500);
    let replica = app.replica(bound).await;
    assert_eq!(listed(&replica, "/events").await, 1);
    // A write on the first replica; the second one kept its answer.
    let written = std::time::Instant::now();
    app.create_event_at(&location_id, "opera tosca").await;
    let seen =
        myevents_testkit::eventually(WAIT, || async { listed(&replica, "/events").await == 2 })
            .await;
    assert!(seen, "the second replica shows the new event");
    // Within the bound (with room for a loaded machine), never an hour's kept copy.
    assert!(
        written.elapsed() < bound + Duration::from_secs(5),
        "seen after {:?}",
        written.elapsed()
    );
}
