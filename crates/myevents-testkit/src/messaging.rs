//! Messages between services: a [`Recorder`] of what a broker delivers, the event service's
//! announcement of an event ([`event_created`], [`announce_event`]), and the check that two service
//! processes exchange messages both ways ([`an_event_is_booked_across`], [`create_event_across`]).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use myevents_broker::{EventPublisher, HandlingError, Message, MessageHandler};
use myevents_domain::id::EventId;
use myevents_domain::messages::{DomainEvent, EventCreated};
use tokio::sync::mpsc;

use crate::{ServiceProcess, eventually, eventually_answers, get_json, post_json};

/// A handler that sends every message it gets to [`Recorded::next`].
pub struct Recorder {
    sender: mpsc::UnboundedSender<Message>,
}

/// The receiving end of a [`Recorder`].
pub struct Recorded {
    receiver: mpsc::UnboundedReceiver<Message>,
}

impl Recorder {
    /// A recorder and its receiving end.
    pub fn new() -> (Arc<Self>, Recorded) {
        let (sender, receiver) = mpsc::unbounded_channel();
        (Arc::new(Self { sender }), Recorded { receiver })
    }
}

#[async_trait]
impl MessageHandler for Recorder {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        let _ = self.sender.send(message.clone());
        Ok(())
    }
}

impl Recorded {
    /// The next message, waiting at most `wait`.
    ///
    /// # Panics
    /// When nothing arrives in time.
    pub async fn next(&mut self, wait: Duration) -> Message {
        match tokio::time::timeout(wait, self.receiver.recv()).await {
            Ok(Some(message)) => message,
            _ => panic!("no message within {wait:?}"),
        }
    }
}

/// Waits (up to 30 s each) until `bookings` and `events` answer ready, creates an event of 5 seats on
/// `events`, books 2 of them on `bookings` as soon as it learnt of the event, and waits until
/// `events` counts them (`SeatsAvailable` 3): the two services exchanged messages `over` (named in
/// the failure messages) both ways.
///
/// # Panics
/// When a step does not happen within 30 s.
pub async fn an_event_is_booked_across(
    events: &ServiceProcess,
    bookings: &ServiceProcess,
    over: &str,
) {
    const WAIT: Duration = Duration::from_secs(30);
    for service in [bookings, events] {
        assert!(
            eventually_answers(
                &format!("{}/readyz", service.url()),
                reqwest::StatusCode::OK,
                WAIT
            )
            .await,
            "{}",
            service.log_text()
        );
    }
    let client = reqwest::Client::new();
    let event = post_json(
        &client,
        format!("{}/events", events.url()),
        &serde_json::json!({"Name":"opera aida","StartDate":1_768_000_000_i64,"EndDate":1_768_007_200_i64,
                "Location":{"Name":"West Hall","Halls":[{"name":"A","capacity":5}]}}),
    )
    .await;
    let id = event["ID"].as_str().expect("ID").to_owned();
    let url = format!("{}/events/{id}/bookings", bookings.url());
    assert!(
        eventually(WAIT, || async {
            client
                .post(&url)
                .body(r#"{"seats":2}"#)
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::CREATED)
        })
        .await,
        "the booking service learnt of the event over {over}"
    );
    let event_url = format!("{}/events/{id}", events.url());
    assert!(
        eventually(WAIT, || async {
            get_json(&client, &event_url).await["SeatsAvailable"] == 3
        })
        .await,
        "the event service counted the booking announced over {over}"
    );
}

/// The `eventCreated` the event service sends for event `id` ("opera aida", two hours from
/// 2026-01-10) with `capacity` seats, created by `organiser`.
pub fn event_created(id: EventId, capacity: u32, organiser: &str) -> DomainEvent {
    DomainEvent::EventCreated(EventCreated {
        id,
        name: "opera aida".to_owned(),
        location_id: None,
        start_date: chrono::DateTime::from_timestamp(1_768_000_000, 0).expect("time"),
        end_date: chrono::DateTime::from_timestamp(1_768_007_200, 0).expect("time"),
        capacity: Some(capacity),
        hall: None,
        location_name: None,
        organiser: Some(organiser.to_owned()),
    })
}

/// Publishes `event` through `publisher` as a service would (its wire name, partition key and JSON).
///
/// # Panics
/// When the broker refuses it.
pub async fn publish_event(publisher: &dyn EventPublisher, event: &DomainEvent) {
    publisher
        .publish(&Message::new(event.name(), event.key(), event.to_json()))
        .await
        .expect("publish");
}

/// Announces a new event of `capacity` seats created by `organiser` through `publisher`, as the event
/// service would ([`event_created`]); returns its id.
pub async fn announce_event(
    publisher: &dyn EventPublisher,
    capacity: u32,
    organiser: &str,
) -> EventId {
    let id = EventId::generate();
    publish_event(publisher, &event_created(id, capacity, organiser)).await;
    id
}

/// Creates `event` (a JSON body of `POST /events`) on the event service `events`, and waits up to
/// `deadline` until the booking service `bookings` learned of it from `eventCreated`; returns its id.
///
/// # Panics
/// When the event service does not answer 201, or the booking service never learns of the event.
pub async fn create_event_across(
    client: &reqwest::Client,
    events: &ServiceProcess,
    bookings: &ServiceProcess,
    event: &serde_json::Value,
    deadline: Duration,
) -> String {
    let created = client
        .post(format!("{}/events", events.url()))
        .json(event)
        .send()
        .await
        .expect("request");
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let event: serde_json::Value = created.json().await.expect("json");
    let id = event["ID"].as_str().expect("ID").to_owned();
    let bookings_url = format!("{}/events/{id}/bookings", bookings.url());
    assert!(
        eventually_answers(&bookings_url, reqwest::StatusCode::OK, deadline).await,
        "the booking service learned of the event"
    );
    id
}
