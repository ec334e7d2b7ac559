//! The booking service under test: the whole application (middleware, use cases, consumer, outbox
//! relay, reconciliation every second) on a store and a broker of the test's choice, each request
//! sent to its router in process (`Answer::from_router`).

use std::time::Duration;

use axum::body::Body;
use myevents_booking_service::config::BookingServiceConfig;
use myevents_booking_service::{Application, Dependencies};
use myevents_broker::memory::InMemoryBroker;
use myevents_broker::{Consumer, Message, Subscription};
use myevents_domain::booking::Booking;
use myevents_domain::id::EventId;
use myevents_domain::messages::DomainEvent;
use myevents_host::{Config, HostConfig};
use myevents_messaging::broker::Broker;
use myevents_store::factory::{BookingStore, ServiceStore};
use myevents_testkit::{
    Answer, InProcess, Recorded, Recorder, announce_event, eventually, publish_event, unique,
};
use reqwest::StatusCode;

/// How long a test waits for something asynchronous (a message, the consumer).
pub(crate) const WAIT: Duration = Duration::from_secs(20);

pub(crate) struct TestApp {
    /// The service's router, called in process.
    pub(crate) http: InProcess,
    /// The broker the service consumes from and publishes to.
    pub(crate) broker: Broker,
    /// The service's queue.
    pub(crate) queue: String,
    /// The service's store, read through its port.
    pub(crate) store: BookingStore,
    /// Every `eventBooked` and `bookingCancelled` the service published.
    pub(crate) published: Recorded,
    _observer: Consumer,
}

impl TestApp {
    /// The service over the in-memory store and broker.
    pub(crate) async fn in_memory() -> Self {
        Self::on(
            Broker::in_memory(&InMemoryBroker::default()),
            BookingStore::in_memory(),
        )
        .await
    }

    /// The service over `store` and `broker`, with at most 4 seats per booking.
    pub(crate) async fn on(broker: Broker, store: BookingStore) -> Self {
        let observer = Subscription::new(unique("observer"), &["eventBooked", "bookingCancelled"]);
        broker
            .subscriber
            .declare(&observer)
            .await
            .expect("declare observer");
        let (recorder, published) = Recorder::new();
        let observer = broker
            .subscriber
            .subscribe(&observer, recorder)
            .await
            .expect("observe");
        let queue = unique("booking");
        let router = start(&queue, store.clone(), broker.clone()).await;
        Self {
            http: InProcess(router),
            broker,
            queue,
            store,
            published,
            _observer: observer,
        }
    }

    /// Another instance of the service on the same store (its own queue and in-memory broker): what
    /// a second replica, or the service after a restart, answers.
    pub(crate) async fn replica(&self) -> myevents_http::layers::App {
        let broker = Broker::in_memory(&InMemoryBroker::default());
        start(&unique("booking"), self.store.clone(), broker).await
    }

    /// Announces an event of `capacity` seats as the event service would, and waits until the
    /// booking service knows it.
    pub(crate) async fn announce_event(&self, capacity: u32) -> EventId {
        let id = announce_event(self.broker.publisher.as_ref(), capacity, "anonymous").await;
        let known = eventually(WAIT, || async {
            self.http
                .get(&format!("/events/{id}/bookings"))
                .await
                .status
                == StatusCode::OK
        })
        .await;
        assert!(known, "the booking service learned of event {id}");
        id
    }

    /// Publishes `event` on the service's broker.
    pub(crate) async fn publish(&self, event: &DomainEvent) {
        publish_event(self.broker.publisher.as_ref(), event).await;
    }

    /// Publishes `message` as it is on the service's broker.
    pub(crate) async fn publish_raw(&self, message: Message) {
        self.broker
            .publisher
            .publish(&message)
            .await
            .expect("publish");
    }

    /// `GET path` as `user` (`X-User-Id`; authentication is off), or anonymously.
    pub(crate) async fn get_as(&self, path: &str, user: Option<&str>) -> Answer {
        let user = user.map(|user| ("x-user-id", user));
        self.http.get_with(path, user.as_slice()).await
    }

    pub(crate) async fn book(&self, event: &str, body: &str, user: Option<&str>) -> Answer {
        self.book_with_key(event, body, user, None).await
    }

    /// `POST /events/{event}/bookings` as the reference frontend sends it (`text/plain`), as `user`
    /// and with an `Idempotency-Key` if given.
    pub(crate) async fn book_with_key(
        &self,
        event: &str,
        body: &str,
        user: Option<&str>,
        key: Option<&str>,
    ) -> Answer {
        let key = key.map(|key| format!("\"{key}\""));
        let mut headers = vec![("content-type", "text/plain;charset=UTF-8")];
        headers.extend(user.map(|user| ("x-user-id", user)));
        headers.extend(key.as_deref().map(|key| ("idempotency-key", key)));
        self.post_bookings(event, &headers, body.to_owned()).await
    }

    /// `POST /events/{event}/bookings` with `headers` and `body`.
    pub(crate) async fn post_bookings(
        &self,
        event: impl std::fmt::Display,
        headers: &[(&str, &str)],
        body: impl Into<Body>,
    ) -> Answer {
        self.http
            .request("POST", &format!("/events/{event}/bookings"), headers, body)
            .await
    }

    /// The bookings stored for `event`, read through the store's port.
    pub(crate) async fn stored_bookings(&self, event: &str) -> Vec<Booking> {
        self.store
            .bookings
            .bookings_for_event(
                EventId::parse(event).expect("id"),
                myevents_store::PageRequest::first(1000),
            )
            .await
            .expect("list")
    }

    /// The seats of `event` still on sale, read through the store's port.
    pub(crate) async fn remaining_seats(&self, event: EventId) -> u32 {
        self.store
            .bookings
            .inventory(event)
            .await
            .expect("read")
            .expect("known")
            .remaining
            .get()
    }
}

/// Starts the service on `queue` over `store` and `broker`; returns its router. The consumer, the
/// relay and the reconciliation (every second) run; the listener is never called.
async fn start(queue: &str, store: BookingStore, broker: Broker) -> myevents_http::layers::App {
    let config = Config {
        host: HostConfig::ephemeral(queue),
        service: BookingServiceConfig {
            max_seats_per_booking: 4,
            reconcile_every: Duration::from_secs(1),
            ..BookingServiceConfig::default()
        },
    };
    let app = Application::build(&config, Dependencies { store, broker })
        .await
        .expect("build");
    assert!(
        eventually(WAIT, || async { app.consumer_attached() }).await,
        "consumer attached"
    );
    let router = app.router();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    router
}

/// Sends 200 one-seat bookings at once, each as another user, for an event of 50 seats: exactly 50
/// are sold (201), the other 150 get 409, no seat is left and 50 bookings are stored.
pub(crate) async fn two_hundred_one_seat_bookings_of_fifty_seats_sell_fifty(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let event = app.announce_event(50).await;
    let requests: Vec<_> = (0..200)
        .map(|i| {
            let app = std::sync::Arc::clone(&app);
            tokio::spawn(async move {
                app.book(
                    &event.to_string(),
                    r#"{"seats":1}"#,
                    Some(&format!("user{i}")),
                )
                .await
                .status
            })
        })
        .collect();
    let (mut created, mut conflicts) = (0, 0);
    for request in requests {
        match request.await.expect("task") {
            StatusCode::CREATED => created += 1,
            StatusCode::CONFLICT => conflicts += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((created, conflicts), (50, 150));
    assert_eq!(app.remaining_seats(event).await, 0);
    assert_eq!(app.stored_bookings(&event.to_string()).await.len(), 50);
}
