//! Domain events: the messages the services exchange, with their wire names and JSON bodies.
//!
//! Source: the reference MyEvents (chapter 10 of *Cloud Native programming with Golang*), whose field
//! names and order are kept; additions are optional fields at the end, so a reference consumer still
//! reads our messages and we read theirs. Bodies are compact JSON (RFC 8259); times are RFC 3339 in UTC.
//!
//! ```
//! use myevents_domain::messages::{DomainEvent, EventBooked};
//! use myevents_domain::id::EventId;
//!
//! let event = DomainEvent::EventBooked(EventBooked {
//!     event_id: EventId::parse("6b026ab2686c822a56b0fe36").unwrap(),
//!     user_id: "someUserID".into(),
//!     booking_id: None,
//!     seats: None,
//!     booked_at: None,
//! });
//! assert_eq!(event.name(), "eventBooked");
//! assert_eq!(
//!     String::from_utf8(event.to_json()).unwrap(),
//!     r#"{"eventId":"6b026ab2686c822a56b0fe36","userId":"someUserID"}"#
//! );
//! let back = DomainEvent::from_json("eventBooked", &event.to_json()).unwrap();
//! assert_eq!(back, event);
//! ```

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};

use crate::event::Event;
use crate::id::{BookingId, EventId, LocationId};
use crate::location::Location;

/// Wire name of [`EventCreated`].
pub const EVENT_CREATED: &str = "eventCreated";
/// Wire name of [`EventUpdated`].
pub const EVENT_UPDATED: &str = "eventUpdated";
/// Wire name of [`EventCancelled`].
pub const EVENT_CANCELLED: &str = "eventCancelled";
/// Wire name of [`LocationCreated`].
pub const LOCATION_CREATED: &str = "locationCreated";
/// Wire name of [`LocationUpdated`].
pub const LOCATION_UPDATED: &str = "locationUpdated";
/// Wire name of [`LocationDeleted`].
pub const LOCATION_DELETED: &str = "locationDeleted";
/// Wire name of [`EventBooked`].
pub const EVENT_BOOKED: &str = "eventBooked";
/// Wire name of [`BookingCancelled`].
pub const BOOKING_CANCELLED: &str = "bookingCancelled";

/// A subscriber of the suite's messages: the queue (AMQP) or consumer group (Kafka) one service
/// consumes, and the message names bound to it. The list of them, [`SUBSCRIBERS`], is the suite's
/// message topology, which every service declares on the broker (with RabbitMQ, a message that no
/// queue is bound for yet would be dropped), so that a message published before its consumer first
/// ran waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscriber {
    /// The variable naming its queue, e.g. `BOOKING_QUEUE`.
    pub queue_variable: &'static str,
    /// Its queue when that variable is unset (the reference's: `booking`, `events-service`).
    pub queue: &'static str,
    /// The message names it consumes.
    pub consumes: &'static [&'static str],
}

/// The booking service's subscription: [`EVENT_CREATED`], [`EVENT_UPDATED`] and
/// [`EVENT_CANCELLED`] (the events it sells, their capacity, and which are called off).
pub const BOOKING_SERVICE_SUBSCRIBER: Subscriber = Subscriber {
    queue_variable: "BOOKING_QUEUE",
    queue: "booking",
    consumes: &[EVENT_CREATED, EVENT_UPDATED, EVENT_CANCELLED],
};

/// The event service's subscription: [`EVENT_BOOKED`] and [`BOOKING_CANCELLED`] (the seats taken).
pub const EVENT_SERVICE_SUBSCRIBER: Subscriber = Subscriber {
    queue_variable: "EVENTS_QUEUE",
    queue: "events-service",
    consumes: &[EVENT_BOOKED, BOOKING_CANCELLED],
};

/// Every subscriber of the suite's messages. ([`LOCATION_CREATED`] has none: the reference
/// publishes it, nothing consumes it; nor have [`LOCATION_UPDATED`] and [`LOCATION_DELETED`], which
/// complete it for a subscriber that keeps a copy of the locations. Events keep the copy of their
/// location they were created with.)
pub const SUBSCRIBERS: [Subscriber; 2] = [BOOKING_SERVICE_SUBSCRIBER, EVENT_SERVICE_SUBSCRIBER];

/// An event was created (published by the event service). Body:
/// `{"id","name","location_id","start_date","end_date"[,"capacity","hall","location_name","organiser"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventCreated {
    /// The event's id.
    pub id: EventId,
    /// The event's name.
    pub name: String,
    /// The location's 24-hex id. A reference service sends mangled raw bytes here; anything that is not
    /// an id reads as absent rather than failing the whole message.
    #[serde(deserialize_with = "lenient_location_id", default)]
    #[schemars(with = "serde_json::Value")]
    pub location_id: Option<LocationId>,
    /// Start, RFC 3339 (we send UTC with `Z`; any offset is accepted).
    pub start_date: DateTime<Utc>,
    /// End, RFC 3339.
    pub end_date: DateTime<Utc>,
    /// Seats on sale. Absent in a reference service's messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u32>,
    /// The hall, when one was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hall: Option<String>,
    /// The location's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location_name: Option<String>,
    /// The user id of the organiser who created the event (a token's `sub`), who alone with
    /// administrators may list its bookings. Absent in a reference service's messages; a value that
    /// cannot be a user id reads as absent (then administrators only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub organiser: Option<String>,
}

impl EventCreated {
    /// The message announcing a stored event.
    pub fn from_event(event: &Event) -> Self {
        Self {
            id: event.id,
            name: event.name.clone(),
            location_id: Some(event.location.id),
            start_date: event.start,
            end_date: event.end,
            capacity: Some(event.capacity.get()),
            hall: event.hall.clone(),
            location_name: Some(event.location.name.clone()),
            organiser: event
                .organiser
                .as_ref()
                .map(|user| user.as_str().to_owned()),
        }
    }
}

/// An event's organiser changed it (published by the event service): the event as it is after the
/// change, in [`EventCreated`]'s fields, and its `revision` (1 after the first change, one more per
/// change; see `Event::revision`). Body: `{"id","name","location_id","start_date","end_date",
/// "capacity","hall"?,"location_name","organiser"?,"revision"}`. A consumer applies a revision
/// above the one it holds and ignores the others (repeated or overtaken); one that has not heard
/// of the event yet learns it from this message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventUpdated {
    /// The event after the change.
    #[serde(flatten)]
    pub event: EventCreated,
    /// The event's revision after the change.
    pub revision: u64,
}

impl EventUpdated {
    /// The message announcing a stored change of `event`.
    pub fn from_event(event: &Event) -> Self {
        Self {
            event: EventCreated::from_event(event),
            revision: event.revision,
        }
    }
}

/// An event was called off (published by the event service): every booking of it is cancelled and
/// nothing more is sold. Body: `{"id","revision","cancelled_at"[,"reason"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EventCancelled {
    /// The event's id.
    pub id: EventId,
    /// The event's revision after its cancellation.
    pub revision: u64,
    /// When, RFC 3339 UTC.
    pub cancelled_at: DateTime<Utc>,
    /// Why, as the organiser said it; omitted when empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

fn lenient_location_id<'de, D: Deserializer<'de>>(d: D) -> Result<Option<LocationId>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(d)?;
    Ok(value
        .as_ref()
        .and_then(serde_json::Value::as_str)
        .and_then(|s| LocationId::parse(s).ok()))
}

/// A hall inside [`LocationCreated`]: `{"name","location"(omitted when empty),"capacity"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct HallMessage {
    /// Hall name.
    pub name: String,
    /// Position in the building.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub location: String,
    /// Seats.
    pub capacity: u32,
}

/// A location was created (published by the event service). Body:
/// `{"id","name","address","country","halls":[...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocationCreated {
    /// The location's id (24 hex).
    pub id: LocationId,
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Country.
    pub country: String,
    /// Halls.
    #[serde(default)]
    pub halls: Vec<HallMessage>,
}

impl LocationCreated {
    /// The message announcing a stored location.
    pub fn from_location(location: &Location) -> Self {
        Self {
            id: location.id,
            name: location.name.clone(),
            address: location.address.clone(),
            country: location.country.clone(),
            halls: location
                .halls
                .iter()
                .map(|h| HallMessage {
                    name: h.name.clone(),
                    location: h.location.clone(),
                    capacity: h.capacity.get(),
                })
                .collect(),
        }
    }
}

/// A location's organiser renamed or extended it (published by the event service): the location as
/// it is after the change, in [`LocationCreated`]'s fields, and its `revision` (1 after the first
/// change, one more per change). Body: `{"id","name","address","country","halls":[...],
/// "revision"}`. A consumer applies a revision above the one it holds and ignores the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocationUpdated {
    /// The location after the change.
    #[serde(flatten)]
    pub location: LocationCreated,
    /// The location's revision after the change.
    pub revision: u64,
}

impl LocationUpdated {
    /// The message announcing a stored change of `location`.
    pub fn from_location(location: &Location) -> Self {
        Self {
            location: LocationCreated::from_location(location),
            revision: location.revision,
        }
    }
}

/// A location was deleted (published by the event service); it had no events to come. Body:
/// `{"id","revision","deleted_at"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LocationDeleted {
    /// The location's id.
    pub id: LocationId,
    /// The location's revision after its deletion.
    pub revision: u64,
    /// When, RFC 3339 UTC.
    pub deleted_at: DateTime<Utc>,
}

/// Seats of an event were booked (published by the booking service). Body:
/// `{"eventId","userId"[,"bookingId","seats","bookedAt"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventBooked {
    /// The booked event.
    pub event_id: EventId,
    /// Who booked.
    pub user_id: String,
    /// The booking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booking_id: Option<BookingId>,
    /// Seats booked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<u32>,
    /// When, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub booked_at: Option<DateTime<Utc>>,
}

/// A booking was cancelled (published by the booking service): its seats went back on sale, unless
/// its event was called off (then `reason` says so). Body:
/// `{"bookingId","eventId","userId","seats","cancelledAt"[,"reason"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BookingCancelled {
    /// The cancelled booking.
    pub booking_id: BookingId,
    /// Its event.
    pub event_id: EventId,
    /// Who had booked.
    pub user_id: String,
    /// Seats given back.
    pub seats: u32,
    /// When, RFC 3339 UTC.
    pub cancelled_at: DateTime<Utc>,
    /// Why, when its buyer did not cancel it (its event was called off: see
    /// `myevents_domain::booking::EVENT_CANCELLED_REASON`); omitted otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Why a message body is not a domain event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The event name is not one of ours.
    #[error("unknown event name {0:?}")]
    UnknownName(String),
    /// The body is not the JSON the name promises.
    #[error("malformed {name} body: {error}")]
    Malformed {
        /// The event name.
        name: String,
        /// What the JSON parser said (in the text above; not a source, so that it is told once).
        error: serde_json::Error,
    },
}

/// Every domain event the services exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainEvent {
    /// See [`EventCreated`].
    EventCreated(EventCreated),
    /// See [`EventUpdated`].
    EventUpdated(EventUpdated),
    /// See [`EventCancelled`].
    EventCancelled(EventCancelled),
    /// See [`LocationCreated`].
    LocationCreated(LocationCreated),
    /// See [`LocationUpdated`].
    LocationUpdated(LocationUpdated),
    /// See [`LocationDeleted`].
    LocationDeleted(LocationDeleted),
    /// See [`EventBooked`].
    EventBooked(EventBooked),
    /// See [`BookingCancelled`].
    BookingCancelled(BookingCancelled),
}

impl DomainEvent {
    /// The wire name: routing key, `x-event-name` header, Kafka `eventName`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::EventCreated(_) => EVENT_CREATED,
            Self::EventUpdated(_) => EVENT_UPDATED,
            Self::EventCancelled(_) => EVENT_CANCELLED,
            Self::LocationCreated(_) => LOCATION_CREATED,
            Self::LocationUpdated(_) => LOCATION_UPDATED,
            Self::LocationDeleted(_) => LOCATION_DELETED,
            Self::EventBooked(_) => EVENT_BOOKED,
            Self::BookingCancelled(_) => BOOKING_CANCELLED,
        }
    }

    /// The partition key: the id of the entity the message is about (the event for event messages, the
    /// location for location messages), so all messages about one entity stay in order.
    pub fn key(&self) -> String {
        match self {
            Self::EventCreated(m) => m.id.to_string(),
            Self::EventUpdated(m) => m.event.id.to_string(),
            Self::EventCancelled(m) => m.id.to_string(),
            Self::LocationCreated(m) => m.id.to_string(),
            Self::LocationUpdated(m) => m.location.id.to_string(),
            Self::LocationDeleted(m) => m.id.to_string(),
            Self::EventBooked(m) => m.event_id.to_string(),
            Self::BookingCancelled(m) => m.event_id.to_string(),
        }
    }

    /// The compact JSON body.
    pub fn to_json(&self) -> Vec<u8> {
        let body = match self {
            Self::EventCreated(m) => serde_json::to_vec(m),
            Self::EventUpdated(m) => serde_json::to_vec(m),
            Self::EventCancelled(m) => serde_json::to_vec(m),
            Self::LocationCreated(m) => serde_json::to_vec(m),
            Self::LocationUpdated(m) => serde_json::to_vec(m),
            Self::LocationDeleted(m) => serde_json::to_vec(m),
            Self::EventBooked(m) => serde_json::to_vec(m),
            Self::BookingCancelled(m) => serde_json::to_vec(m),
        };
        // Serialising these plain structs (strings, numbers, ids, times) cannot fail.
        body.unwrap_or_default()
    }

    /// Decodes a body by its wire name.
    ///
    /// # Errors
    /// [`DecodeError::UnknownName`] for a name not listed here, [`DecodeError::Malformed`] when the body
    /// does not match the name's contract.
    pub fn from_json(name: &str, body: &[u8]) -> Result<Self, DecodeError> {
        let malformed = |error| DecodeError::Malformed {
            name: name.to_owned(),
            error,
        };
        match name {
            EVENT_CREATED => serde_json::from_slice(body)
                .map(Self::EventCreated)
                .map_err(malformed),
            EVENT_UPDATED => serde_json::from_slice(body)
                .map(Self::EventUpdated)
                .map_err(malformed),
            EVENT_CANCELLED => serde_json::from_slice(body)
                .map(Self::EventCancelled)
                .map_err(malformed),
            LOCATION_CREATED => serde_json::from_slice(body)
                .map(Self::LocationCreated)
                .map_err(malformed),
            LOCATION_UPDATED => serde_json::from_slice(body)
                .map(Self::LocationUpdated)
                .map_err(malformed),
            LOCATION_DELETED => serde_json::from_slice(body)
                .map(Self::LocationDeleted)
                .map_err(malformed),
            EVENT_BOOKED => serde_json::from_slice(body)
                .map(Self::EventBooked)
                .map_err(malformed),
            BOOKING_CANCELLED => serde_json::from_slice(body)
                .map(Self::BookingCancelled)
                .map_err(malformed),
            other => Err(DecodeError::UnknownName(other.to_owned())),
        }
    }
}

/// A domain event waiting in the transactional outbox: stored in the same atomic write as the state
/// change it announces, published later by the relay with this id, so a consumer can recognise a
/// repeated publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    /// Unique message id (UUID v7 text), kept on every publish attempt.
    pub id: String,
    /// When the state change happened, UTC (millisecond precision survives every store).
    pub occurred_at: DateTime<Utc>,
    /// The event.
    pub event: DomainEvent,
    /// The W3C `traceparent` of the request that caused it (W3C Trace Context, section 3.2), sent as
    /// a message header so that the consumer's work joins the same trace.
    pub trace_parent: Option<String>,
}

impl OutboxMessage {
    /// A message for `event` with a fresh id, occurring now, outside any trace.
    pub fn new(event: DomainEvent) -> Self {
        let now = Utc::now();
        Self {
            id: uuid::Uuid::now_v7().to_string(),
            occurred_at: DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now),
            event,
            trace_parent: None,
        }
    }

    /// The same message, part of the trace `trace_parent` (a W3C `traceparent` value).
    #[must_use]
    pub fn in_trace(mut self, trace_parent: Option<String>) -> Self {
        self.trace_parent = trace_parent;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_created_body_matches_the_reference_field_order() {
        let msg = EventCreated {
            id: EventId::parse("6b026ab2686c822a56b0fe36").expect("id"),
            name: "opera aida".into(),
            location_id: Some(LocationId::parse("6b026aaf686c822a56b0fe35").expect("id")),
            start_date: DateTime::from_timestamp(1_768_000_000, 0).expect("time"),
            end_date: DateTime::from_timestamp(1_768_007_200, 0).expect("time"),
            capacity: None,
            hall: None,
            location_name: None,
            organiser: None,
        };
        let body = DomainEvent::EventCreated(msg).to_json();
        assert_eq!(
            String::from_utf8(body).expect("utf8"),
            r#"{"id":"6b026ab2686c822a56b0fe36","name":"opera aida","location_id":"6b026aaf686c822a56b0fe35","start_date":"2026-01-09T23:06:40Z","end_date":"2026-01-10T01:06:40Z"}"#
        );
    }

    #[test]
    fn a_reference_event_created_with_mangled_location_and_local_time_is_accepted() {
        let body = br#"{"id":"6b026ab2686c822a56b0fe36","name":"opera aida","location_id":"k\u0002j\ufffd\ufffd","start_date":"2026-01-10T00:06:40+01:00","end_date":"2026-01-10T02:06:40+01:00"}"#;
        let DomainEvent::EventCreated(msg) =
            DomainEvent::from_json(EVENT_CREATED, body).expect("decodes")
        else {
            panic!("wrong variant");
        };
        assert_eq!(msg.location_id, None);
        assert_eq!(msg.start_date.timestamp(), 1_768_000_000);
        assert_eq!(msg.capacity, None);
    }

    #[test]
    fn event_updated_is_event_created_with_a_revision_and_event_cancelled_omits_an_empty_reason() {
        let body = br#"{"id":"6b026ab2686c822a56b0fe36","name":"opera aida","location_id":"6b026aaf686c822a56b0fe35","start_date":"2026-01-09T23:06:40Z","end_date":"2026-01-10T01:06:40Z","capacity":90,"revision":2}"#;
        let decoded = DomainEvent::from_json(EVENT_UPDATED, body).expect("decodes");
        let DomainEvent::EventUpdated(update) = &decoded else {
            panic!("wrong variant");
        };
        assert_eq!((update.revision, update.event.capacity), (2, Some(90)));
        assert_eq!(decoded.to_json(), body.to_vec());
        assert_eq!(decoded.key(), "6b026ab2686c822a56b0fe36");
        let without_revision = String::from_utf8_lossy(body).replace(r#","revision":2"#, "");
        assert!(matches!(
            DomainEvent::from_json(EVENT_UPDATED, without_revision.as_bytes()),
            Err(DecodeError::Malformed { .. })
        ));
        let body = br#"{"id":"6b026ab2686c822a56b0fe36","revision":3,"cancelled_at":"2026-01-09T23:06:40Z"}"#;
        let decoded = DomainEvent::from_json(EVENT_CANCELLED, body).expect("decodes");
        assert_eq!(decoded.to_json(), body.to_vec());
    }

    #[test]
    fn location_created_omits_an_empty_hall_location() {
        let body = br#"{"id":"6b026aaf686c822a56b0fe35","name":"West Hall","address":"1 Main St","country":"DE","halls":[{"name":"A","capacity":100}]}"#;
        let decoded = DomainEvent::from_json(LOCATION_CREATED, body).expect("decodes");
        assert_eq!(decoded.to_json(), body.to_vec());
    }

    #[test]
    fn location_updated_is_location_created_with_a_revision_keyed_by_the_location() {
        let updated = br#"{"id":"6b026aaf686c822a56b0fe35","name":"East Hall","address":"1 Main St","country":"DE","halls":[{"name":"A","capacity":120}],"revision":1}"#;
        let decoded = DomainEvent::from_json(LOCATION_UPDATED, updated).expect("decodes");
        assert_eq!(decoded.to_json(), updated.to_vec());
        assert_eq!(decoded.key(), "6b026aaf686c822a56b0fe35");
        let deleted = br#"{"id":"6b026aaf686c822a56b0fe35","revision":2,"deleted_at":"2026-01-09T23:06:40Z"}"#;
        let decoded = DomainEvent::from_json(LOCATION_DELETED, deleted).expect("decodes");
        assert_eq!(decoded.name(), LOCATION_DELETED);
        assert_eq!(decoded.to_json(), deleted.to_vec());
        assert!(matches!(
            DomainEvent::from_json(LOCATION_UPDATED, br#"{"id":"6b026aaf686c822a56b0fe35"}"#),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn unknown_names_and_malformed_bodies_are_errors() {
        assert!(matches!(
            DomainEvent::from_json("eventDeleted", b"{}"),
            Err(DecodeError::UnknownName(_))
        ));
        assert!(matches!(
            DomainEvent::from_json(EVENT_BOOKED, b"{not json"),
            Err(DecodeError::Malformed { .. })
        ));
        assert!(matches!(
            DomainEvent::from_json(EVENT_CREATED, br#"{"id":"nope"}"#),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
