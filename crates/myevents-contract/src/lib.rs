//! # myevents-contract
//!
//! What a client builds against, generated from the code and committed under `frontend-contract/`:
//!
//! - `openapi/event-service.json`, `openapi/booking-service.json`: each service's OpenAPI 3.1
//!   document, the one it serves at `GET /openapi.json` (`myevents_host::api_document`);
//! - `asyncapi.json`: the AsyncAPI 3.1 document of the domain events, with both bindings
//!   (the RabbitMQ exchange, routing keys, headers and queues; the Kafka topic, key, headers and
//!   envelope);
//! - `schemas/<name>.json`: the JSON Schema (draft-07) of each message body ([`message_schema`]),
//!   generated with `schemars` from the type the consumers decode it into.
//!
//! [`stale`] is the drift check (the test command runs it); [`write()`] regenerates.
//!
//! ```
//! let docs = myevents_contract::documents();
//! assert!(docs.iter().any(|d| d.path == "asyncapi.json"));
//! ```

use std::path::{Path, PathBuf};

use myevents_booking_service::BookingServiceSpec;
use myevents_domain::id::{BookingId, EventId, LocationId};
use myevents_domain::messages::{
    BOOKING_CANCELLED, BookingCancelled, DomainEvent, EVENT_BOOKED, EVENT_CANCELLED, EVENT_CREATED,
    EVENT_UPDATED, EventBooked, EventCancelled, EventCreated, EventUpdated, HallMessage,
    LOCATION_CREATED, LOCATION_DELETED, LOCATION_UPDATED, LocationCreated, LocationDeleted,
    LocationUpdated,
};
use myevents_event_service::EventServiceSpec;
use myevents_host::Service;
use serde_json::{Value, json};

/// One generated file: its path under `frontend-contract/` and its text (pretty JSON, ending in a
/// newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Relative path, `/`-separated.
    pub path: String,
    /// The file's whole text.
    pub text: String,
}

/// The domain events, in the order the documents list them, with who publishes them.
const MESSAGES: [(&str, &str); 8] = [
    (LOCATION_CREATED, EventServiceSpec::NAME),
    (LOCATION_UPDATED, EventServiceSpec::NAME),
    (LOCATION_DELETED, EventServiceSpec::NAME),
    (EVENT_CREATED, EventServiceSpec::NAME),
    (EVENT_UPDATED, EventServiceSpec::NAME),
    (EVENT_CANCELLED, EventServiceSpec::NAME),
    (EVENT_BOOKED, BookingServiceSpec::NAME),
    (BOOKING_CANCELLED, BookingServiceSpec::NAME),
];

/// The workspace's `frontend-contract/` directory.
pub fn default_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../frontend-contract")
}

/// `value` as the committed text: pretty JSON with every object's keys in sorted order, whatever
/// order `serde_json` keeps them in (a build where some crate enables its `preserve_order`
/// feature keeps insertion order), and a final newline.
fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&sorted(value)).unwrap_or_default();
    text.push('\n');
    text
}

fn sorted(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.clone(), sorted(v)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// Every generated document.
pub fn documents() -> Vec<Document> {
    let mut docs = vec![
        Document {
            path: "openapi/event-service.json".to_owned(),
            text: pretty(&myevents_host::api_document::<EventServiceSpec>()),
        },
        Document {
            path: "openapi/booking-service.json".to_owned(),
            text: pretty(&myevents_host::api_document::<BookingServiceSpec>()),
        },
        Document {
            path: "asyncapi.json".to_owned(),
            text: pretty(&asyncapi()),
        },
    ];
    for (name, _) in MESSAGES {
        if let Some(schema) = message_schema(name) {
            docs.push(Document {
                path: format!("schemas/{name}.json"),
                text: pretty(&schema),
            });
        }
    }
    docs
}

/// Writes every document under `dir`; returns the paths written.
///
/// # Errors
/// A directory or file that cannot be written.
pub fn write(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for doc in documents() {
        let path = dir.join(&doc.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, doc.text)?;
        written.push(path);
    }
    Ok(written)
}

/// The documents under `dir` that are missing or differ from what the code generates.
///
/// # Errors
/// A file that exists but cannot be read.
pub fn stale(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut stale = Vec::new();
    for doc in documents() {
        let path = dir.join(&doc.path);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == doc.text => {}
            Ok(_) => stale.push(path),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => stale.push(path),
            Err(error) => return Err(error.into()),
        }
    }
    Ok(stale)
}

/// The JSON Schema (draft-07, every subschema inline) of the body of the domain event `name`,
/// generated from the type `DomainEvent::from_json` decodes it into (`myevents_domain::messages`):
/// a body the schema refuses is one the consumers refuse too, and they dead-letter it. `None` for
/// a name that is not a domain event.
pub fn message_schema(name: &str) -> Option<Value> {
    let generator = || {
        schemars::generate::SchemaSettings::draft07()
            .with(|s| s.inline_subschemas = true)
            .into_generator()
    };
    let schema = match name {
        EVENT_CREATED => generator().into_root_schema_for::<EventCreated>(),
        EVENT_UPDATED => generator().into_root_schema_for::<EventUpdated>(),
        EVENT_CANCELLED => generator().into_root_schema_for::<EventCancelled>(),
        LOCATION_CREATED => generator().into_root_schema_for::<LocationCreated>(),
        LOCATION_UPDATED => generator().into_root_schema_for::<LocationUpdated>(),
        LOCATION_DELETED => generator().into_root_schema_for::<LocationDeleted>(),
        EVENT_BOOKED => generator().into_root_schema_for::<EventBooked>(),
        BOOKING_CANCELLED => generator().into_root_schema_for::<BookingCancelled>(),
        _ => return None,
    };
    let mut schema = schema.to_value();
    schema["$id"] = json!(format!(
        "https://myevents.example/contract/schemas/{name}.json"
    ));
    Some(schema)
}

/// A real message of each kind, as the services publish it (the documents' examples).
pub fn example(name: &str) -> Option<DomainEvent> {
    let id = |text: &str| myevents_domain::id::ObjectId::parse(text).ok();
    let event_id = EventId::from(id("6b026ab2686c822a56b0fe36")?);
    let location_id = LocationId::from(id("6b026aaf686c822a56b0fe35")?);
    let booking_id = BookingId::from(id("a3f1c29e0b7d4c5e8f901234")?);
    let at = |seconds| chrono::DateTime::from_timestamp(seconds, 0);
    let created = || {
        Some(EventCreated {
            id: event_id,
            name: "opera aida".to_owned(),
            location_id: Some(location_id),
            start_date: at(1_768_000_000)?,
            end_date: at(1_768_007_200)?,
            capacity: Some(100),
            hall: Some("A".to_owned()),
            location_name: Some("West Hall".to_owned()),
            organiser: Some("someOrganiserID".to_owned()),
        })
    };
    let location = || LocationCreated {
        id: location_id,
        name: "West Hall".to_owned(),
        address: "1 Main St".to_owned(),
        country: "DE".to_owned(),
        halls: vec![HallMessage {
            name: "A".to_owned(),
            location: "1st floor".to_owned(),
            capacity: 100,
        }],
    };
    Some(match name {
        LOCATION_CREATED => DomainEvent::LocationCreated(location()),
        LOCATION_UPDATED => DomainEvent::LocationUpdated(LocationUpdated {
            location: LocationCreated {
                name: "West Hall and Annex".to_owned(),
                halls: [
                    location().halls,
                    vec![HallMessage {
                        name: "Annex".to_owned(),
                        location: String::new(),
                        capacity: 40,
                    }],
                ]
                .concat(),
                ..location()
            },
            revision: 1,
        }),
        LOCATION_DELETED => DomainEvent::LocationDeleted(LocationDeleted {
            id: location_id,
            revision: 2,
            deleted_at: at(1_768_100_000)?,
        }),
        EVENT_CREATED => DomainEvent::EventCreated(created()?),
        EVENT_UPDATED => DomainEvent::EventUpdated(EventUpdated {
            event: EventCreated {
                name: "opera tosca".to_owned(),
                capacity: Some(120),
                ..created()?
            },
            revision: 1,
        }),
        EVENT_CANCELLED => DomainEvent::EventCancelled(EventCancelled {
            id: event_id,
            revision: 2,
            cancelled_at: at(1_768_003_600)?,
            reason: "the soloist is ill".to_owned(),
        }),
        EVENT_BOOKED => DomainEvent::EventBooked(EventBooked {
            event_id,
            user_id: "someUserID".to_owned(),
            booking_id: Some(booking_id),
            seats: Some(2),
            booked_at: at(1_768_000_000),
        }),
        BOOKING_CANCELLED => DomainEvent::BookingCancelled(BookingCancelled {
            booking_id,
            event_id,
            user_id: "someUserID".to_owned(),
            seats: 2,
            cancelled_at: at(1_768_003_600)?,
            reason: None,
        }),
        _ => return None,
    })
}

fn example_body(name: &str) -> Value {
    example(name)
        .and_then(|event| serde_json::from_slice(&event.to_json()).ok())
        .unwrap_or(Value::Null)
}

const ID_PATTERN: &str = "^[0-9a-f]{24}$";
const TRACEPARENT_PATTERN: &str = "^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$";
const EXAMPLE_TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const EXAMPLE_MESSAGE_ID: &str = "0193a5b2-7c1e-7d3a-9f00-2b4c6d8e0a1f";

/// What the documents say about each message.
fn summary(name: &str) -> &'static str {
    match name {
        LOCATION_CREATED => "A location was created, with its halls.",
        LOCATION_UPDATED => {
            "A location's organiser renamed or extended it (the whole location after the change, with its revision; halls are renamed and grown, never removed). Events keep the copy of the location they were created with."
        }
        LOCATION_DELETED => {
            "A location was deleted; it had no events to come (each had ended or was cancelled). It is no longer read or listed, and no event is created at it."
        }
        EVENT_CREATED => "An event was created: the booking service starts selling its seats.",
        EVENT_UPDATED => {
            "An event's organiser changed it (the whole event after the change, with its revision): the booking service moves the seats on sale by the capacity's difference, never below the seats booked and held, and applies each revision once and never an older one over a newer one."
        }
        EVENT_CANCELLED => {
            "An event was called off: the booking service books nothing more for it and cancels every booking of it (each announced as `bookingCancelled` with its reason); the seats are not sold again."
        }
        EVENT_BOOKED => "Seats of an event were booked: the event service counts them.",
        BOOKING_CANCELLED => {
            "A booking was cancelled and its seats went back on sale (or, with a `reason`, its event was called off): the event service gives them back."
        }
        _ => "",
    }
}

fn payload(name: &str) -> Value {
    json!({
        "schemaFormat": "application/schema+json;version=draft-07",
        "schema": message_schema(name).unwrap_or(Value::Null),
    })
}

/// The AMQP form of message `name`: the body as it is, the event name in the routing key and the
/// `x-event-name` header.
fn amqp_message(name: &str) -> Value {
    json!({
        "name": name,
        "title": name,
        "summary": summary(name),
        "description": "AMQP 0-9-1 properties: `content_type` `application/json`, `delivery_mode` 2 (persistent), `message_id` — a UUID v7 kept on every publish of the same outbox message, so that a consumer's inbox recognises a repeated delivery — and `timestamp` (Unix seconds). Published with publisher confirms, after the state change it announces was stored (transactional outbox).",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": [myevents_broker::EVENT_NAME_HEADER],
            "properties": {
                (myevents_broker::EVENT_NAME_HEADER): {
                    "const": name,
                    "description": "The event name; consumers read the type from it (else from the routing key).",
                },
                (myevents_broker::rabbitmq::MESSAGE_KEY_HEADER): {
                    "type": "string",
                    "pattern": ID_PATTERN,
                    "description": "The id of the entity the message is about (the event, or the location).",
                },
                (myevents_platform::trace::TRACEPARENT_HEADER): {
                    "type": "string",
                    "pattern": TRACEPARENT_PATTERN,
                    "description": "W3C Trace Context of the request that caused the message.",
                },
            },
        },
        "payload": payload(name),
        "correlationId": {
            "description": "The trace of the request that caused the message.",
            "location": "$message.header#/traceparent",
        },
        "bindings": { "amqp": { "messageType": name, "bindingVersion": "0.3.0" } },
        "examples": [{
            "name": name,
            "headers": {
                (myevents_broker::EVENT_NAME_HEADER): name,
                (myevents_broker::rabbitmq::MESSAGE_KEY_HEADER): example(name).map(|e| e.key()),
                (myevents_platform::trace::TRACEPARENT_HEADER): EXAMPLE_TRACEPARENT,
            },
            "payload": example_body(name),
        }],
    })
}

/// The Kafka form of message `name`: the record value is the envelope
/// `{"eventName": name, "payload": body}`, keyed by the entity's id, with CloudEvents headers.
fn kafka_message(name: &str) -> Value {
    let body = message_schema(name).unwrap_or(Value::Null);
    json!({
        "name": name,
        "title": name,
        "summary": summary(name),
        "description": "The record value is the reference's envelope `{\"eventName\", \"payload\"}`; the key is the id of the entity the message is about, so that messages about one event stay in order on one partition. Headers follow the CloudEvents Kafka protocol binding (v1.0.2, binary mode names). Produced idempotently with `acks=all`, after the state change was stored (transactional outbox).",
        "contentType": "application/json",
        "headers": {
            "type": "object",
            "required": ["ce_specversion", "ce_id", "ce_type", "ce_source", "ce_time"],
            "properties": {
                "ce_specversion": { "const": "1.0" },
                "ce_id": { "type": "string", "description": "The message id (UUID v7), kept on every publish of the same outbox message." },
                "ce_type": { "const": name },
                "ce_source": { "const": "myevents" },
                "ce_time": { "type": "string", "format": "date-time" },
                "content-type": { "const": "application/json" },
                (myevents_platform::trace::TRACEPARENT_HEADER): {
                    "type": "string",
                    "pattern": TRACEPARENT_PATTERN,
                },
            },
        },
        "payload": {
            "schemaFormat": "application/schema+json;version=draft-07",
            "schema": {
                "type": "object",
                "required": ["eventName", "payload"],
                "properties": {
                    "eventName": { "const": name },
                    "payload": body,
                },
            },
        },
        "bindings": {
            "kafka": {
                "key": { "type": "string", "pattern": ID_PATTERN },
                "bindingVersion": "0.5.0",
            },
        },
        "examples": [{
            "name": name,
            "headers": {
                "ce_specversion": "1.0",
                "ce_id": EXAMPLE_MESSAGE_ID,
                "ce_type": name,
                "ce_source": "myevents",
                "ce_time": "2026-01-09T23:06:40Z",
                "content-type": "application/json",
                (myevents_platform::trace::TRACEPARENT_HEADER): EXAMPLE_TRACEPARENT,
            },
            "payload": { "eventName": name, "payload": example_body(name) },
        }],
    })
}

fn message_refs(channel: &str, names: &[&str]) -> Vec<Value> {
    names
        .iter()
        .map(|name| json!({ "$ref": format!("#/channels/{channel}/messages/{name}") }))
        .collect()
}

fn channel_messages(kind: &str, names: &[&str]) -> Value {
    Value::Object(
        names
            .iter()
            .map(|name| {
                (
                    (*name).to_owned(),
                    json!({ "$ref": format!("#/components/messages/{name}{kind}") }),
                )
            })
            .collect(),
    )
}

/// An operation of the AsyncAPI document: `action` (`send` or `receive`) of the messages `names` on
/// `channel`, with the operation's `bindings` if any.
fn operation(
    action: &str,
    title: &str,
    channel: &str,
    names: &[&str],
    bindings: Option<Value>,
) -> Value {
    let mut operation = json!({
        "action": action,
        "title": title,
        "channel": { "$ref": format!("#/channels/{channel}") },
        "messages": message_refs(channel, names),
    });
    if let Some(bindings) = bindings {
        operation["bindings"] = bindings;
    }
    operation
}

fn amqp_queue(address: &str, names: &[&str], description: &str) -> Value {
    json!({
        "address": address,
        "title": address,
        "description": description,
        "servers": [{ "$ref": "#/servers/rabbitmq" }],
        "messages": channel_messages("Amqp", names),
        "bindings": { "amqp": {
            "is": "queue",
            "queue": { "name": address, "durable": true, "exclusive": false, "autoDelete": false, "vhost": "/" },
            "bindingVersion": "0.3.0",
        } },
    })
}

/// The AsyncAPI 3.1 document of the domain events (see the crate docs).
pub fn asyncapi() -> Value {
    let all: Vec<&str> = MESSAGES.iter().map(|(name, _)| *name).collect();
    let published_by = |service: &str| -> Vec<&str> {
        MESSAGES
            .iter()
            .filter(|(_, by)| *by == service)
            .map(|(name, _)| *name)
            .collect()
    };
    let event_service = published_by(EventServiceSpec::NAME);
    let booking_service = published_by(BookingServiceSpec::NAME);
    let booking_consumes = myevents_booking_service::consumer::CONSUMES;
    let events_consumes = myevents_event_service::consumer::CONSUMES;
    let booking_queue = myevents_booking_service::config::DEFAULTS.queue;
    let events_queue = myevents_event_service::config::DEFAULTS.queue;
    let exchange = myevents_broker::config::DEFAULT_EXCHANGE;
    let topic = myevents_broker::config::DEFAULT_TOPIC;
    let mut components_messages = serde_json::Map::new();
    for name in &all {
        components_messages.insert(format!("{name}Amqp"), amqp_message(name));
        components_messages.insert(format!("{name}Kafka"), kafka_message(name));
    }
    let amqp_ack = json!({ "amqp": { "ack": true, "bindingVersion": "0.3.0" } });
    let kafka_group = |group: &str| json!({ "kafka": { "groupId": { "const": group }, "bindingVersion": "0.5.0" } });
    let dead_letters = "Messages a consumer could not handle (a body its schema refuses, an unknown event name, or a handler that kept failing), with `x-dead-letter-reason` and `x-dead-letter-source` headers added; `myevents dead-letters` lists and replays them.";
    json!({
        "asyncapi": "3.1.0",
        "info": {
            "title": "MyEvents domain events",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The messages the MyEvents services exchange, on RabbitMQ (`BROKER_KIND=rabbitmq`) or Kafka (`BROKER_KIND=kafka`). The bodies keep the field names and order of the reference MyEvents (*Cloud Native programming with Golang*, chapter 10); our additions are optional fields at the end. Delivery is at least once: every consumer keeps an inbox of message ids and handles a repeated message once. Times are RFC 3339 in UTC.",
            "license": { "name": "MIT OR Apache-2.0" },
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "`AMQP_URL` (default `amqp://guest:guest@localhost:5672/%2f`); `amqps://` for TLS.",
            },
            "kafka": {
                "host": "localhost:9092",
                "protocol": "kafka",
                "description": "`KAFKA_BROKERS` (default `localhost:9092`).",
            },
        },
        "channels": {
            "eventsExchange": {
                "address": exchange,
                "title": "The events exchange",
                "description": "A durable topic exchange (`AMQP_EXCHANGE`, default `events`) declared by every service at start-up; the routing key is the event name.",
                "servers": [{ "$ref": "#/servers/rabbitmq" }],
                "messages": channel_messages("Amqp", &all),
                "bindings": { "amqp": {
                    "is": "routingKey",
                    "exchange": { "name": exchange, "type": "topic", "durable": true, "autoDelete": false, "vhost": "/" },
                    "bindingVersion": "0.3.0",
                } },
            },
            "bookingQueue": amqp_queue(booking_queue, booking_consumes,
                "The booking service's queue (`BOOKING_QUEUE`), bound to the events exchange with the routing keys of the messages it consumes."),
            "eventServiceQueue": amqp_queue(events_queue, events_consumes,
                "The event service's queue (`EVENTS_QUEUE`), bound to the events exchange with the routing keys of the messages it consumes."),
            "bookingDeadLetters": amqp_queue(&format!("{booking_queue}.dlq"), booking_consumes, dead_letters),
            "eventServiceDeadLetters": amqp_queue(&format!("{events_queue}.dlq"), events_consumes, dead_letters),
            "eventsTopic": {
                "address": topic,
                "title": "The events topic",
                "description": "One topic (`KAFKA_TOPIC`, default `events`) for every message; each service reads it in its own consumer group (`BOOKING_QUEUE`, `EVENTS_QUEUE`) and commits an offset once the message is handled.",
                "servers": [{ "$ref": "#/servers/kafka" }],
                "messages": channel_messages("Kafka", &all),
                "bindings": { "kafka": {
                    "topic": topic,
                    "partitions": myevents_broker::config::DEFAULT_PARTITIONS,
                    "bindingVersion": "0.5.0",
                } },
            },
            "eventsDeadLetterTopic": {
                "address": format!("{topic}.dlq"),
                "title": "The dead-letter topic",
                "description": dead_letters,
                "servers": [{ "$ref": "#/servers/kafka" }],
                "messages": channel_messages("Kafka", &all),
            },
        },
        "operations": {
            "eventServicePublishesOnRabbitMq": operation("send", "The event service publishes",
                "eventsExchange", &event_service, None),
            "bookingServicePublishesOnRabbitMq": operation("send", "The booking service publishes",
                "eventsExchange", &booking_service, None),
            "bookingServiceConsumesFromRabbitMq": operation("receive", "The booking service consumes",
                "bookingQueue", booking_consumes, Some(amqp_ack.clone())),
            "eventServiceConsumesFromRabbitMq": operation("receive", "The event service consumes",
                "eventServiceQueue", events_consumes, Some(amqp_ack)),
            "eventServicePublishesOnKafka": operation("send", "The event service produces",
                "eventsTopic", &event_service, None),
            "bookingServicePublishesOnKafka": operation("send", "The booking service produces",
                "eventsTopic", &booking_service, None),
            "bookingServiceConsumesFromKafka": operation("receive", "The booking service consumes",
                "eventsTopic", booking_consumes, Some(kafka_group(booking_queue))),
            "eventServiceConsumesFromKafka": operation("receive", "The event service consumes",
                "eventsTopic", events_consumes, Some(kafka_group(events_queue))),
        },
        "components": { "messages": components_messages },
    })
}
