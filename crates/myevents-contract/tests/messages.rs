//! The message contract against the real consumers: every message the services publish over the
//! real RabbitMQ (and so every message their consumers receive) matches the JSON Schema of
//! `frontend-contract/schemas/`, and a message its schema refuses is dead-lettered by the consumer
//! that receives it, never handled and never lost — over RabbitMQ, and over the Kafka-protocol
//! test broker with the `kafka` feature.

use std::time::Duration;

use myevents_broker::config::BrokerConfig;
use myevents_broker::{EventSubscriber, Message, Subscription};
use myevents_contract::{example, message_schema};
use myevents_domain::messages::{BOOKING_CANCELLED, EVENT_BOOKED, EVENT_CREATED, LOCATION_CREATED};
use myevents_messaging::broker::Broker;
use myevents_testkit::{
    Recorder, ServiceProcess, amqp_url, eventually_answers, post_json, rabbitmq_broker_on,
    rabbitmq_env_on, unique,
};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

/// The id the refused messages name: no event has it.
const UNKNOWN_EVENT: &str = "6b026ab2686c822a56b0fe36";

/// Both services on the broker `broker_env` names, with in-memory stores.
fn services_env(broker_env: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    let mut env = broker_env;
    env.push(("STORE_KIND", "memory".to_owned()));
    env
}

fn validator(name: &str) -> jsonschema::Validator {
    let schema = message_schema(name).expect("a domain event");
    jsonschema::draft7::new(&schema).expect("a valid schema")
}

#[tokio::test]
async fn every_message_the_services_publish_matches_its_schema() {
    let exchange = unique("events");
    let broker = rabbitmq_broker_on(&exchange);
    let all = [
        LOCATION_CREATED,
        EVENT_CREATED,
        EVENT_BOOKED,
        BOOKING_CANCELLED,
    ];
    // A queue bound like the consumers' queues: it receives the same messages they do.
    let tap = Subscription::new(unique("tap"), &all);
    broker.declare(&tap).await.expect("declare");
    let (recorder, mut recorded) = Recorder::new();
    let consumer = broker.subscribe(&tap, recorder).await.expect("subscribe");

    let env = services_env(rabbitmq_env_on(&exchange));
    let events = ServiceProcess::start("event-service", &env).await;
    let bookings = ServiceProcess::start("booking-service", &env).await;
    let client = Client::new();
    let location = post_json(
        &client,
        format!("{}/locations", events.url()),
        &json!({"Name": "West Hall", "Address": "1 Main St", "Country": "DE",
            "Halls": [{"name": "A", "location": "1st floor", "capacity": 10}]}),
    )
    .await;
    let event = post_json(
        &client,
        format!("{}/events", events.url()),
        &json!({"Name": "opera aida", "StartDate": 1_768_000_000, "EndDate": 1_768_007_200,
            "Location": {"ID": location["ID"]}, "Hall": "A"}),
    )
    .await;
    let event_id = event["ID"].as_str().expect("ID");
    let bookings_url = format!("{}/events/{event_id}/bookings", bookings.url());
    assert!(eventually_answers(&bookings_url, StatusCode::OK, WAIT).await);
    let booking = post_json(&client, &bookings_url, &json!({"seats": 2})).await;
    let booking_id = booking["ID"].as_str().expect("ID");
    let cancel = client
        .delete(format!("{}/bookings/{booking_id}", bookings.url()))
        .send()
        .await
        .expect("cancel");
    assert_eq!(cancel.status(), StatusCode::OK);

    let mut seen = Vec::new();
    while seen.len() < all.len() {
        let message = recorded.next(WAIT).await;
        let body: Value = serde_json::from_slice(&message.payload).expect("a JSON body");
        let errors: Vec<String> = validator(&message.name)
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "{} {body} breaks its schema: {errors:?}",
            message.name
        );
        seen.push(message.name.clone());
    }
    seen.sort();
    let mut expected = all.map(str::to_owned).to_vec();
    expected.sort();
    assert_eq!(seen, expected);
    consumer.shutdown().await;
    events.kill().await;
    bookings.kill().await;
}

/// Bodies of message `name` that its schema refuses: each required property left out, each
/// property given a value of the wrong type, and a body that is not an object.
fn refused_bodies(name: &str) -> Vec<Value> {
    let schema = message_schema(name).expect("schema");
    let valid: Value =
        serde_json::from_slice(&example(name).expect("example").to_json()).expect("json");
    let mut bodies = Vec::new();
    for required in schema["required"].as_array().expect("required") {
        let mut body = valid.clone();
        if let Some(fields) = body.as_object_mut() {
            fields.remove(required.as_str().expect("a name"));
        }
        bodies.push(body);
    }
    for property in schema["properties"].as_object().expect("properties").keys() {
        let mut body = valid.clone();
        body[property] = json!({"not": "this"});
        bodies.push(body);
    }
    bodies.push(json!(["not", "an", "object"]));
    let validator = validator(name);
    // A property whose schema accepts anything (the reference's mangled `location_id`) cannot be
    // broken by its value.
    bodies
        .into_iter()
        .filter(|body| !validator.is_valid(body))
        .collect()
}

/// The bodies in the dead-letter queue (or topic) of `subscription`, read through the broker port
/// as the replay command reads them, once there are `expected` of them.
async fn dead_letters(broker: &Broker, subscription: &Subscription, expected: usize) -> Vec<Value> {
    let (recorder, mut recorded) = Recorder::new();
    let consumer = broker
        .subscriber
        .subscribe(&subscription.dead_letters(), recorder)
        .await
        .expect("subscribe to the dead letters");
    let mut bodies = Vec::new();
    while bodies.len() < expected {
        let message = recorded.next(WAIT).await;
        bodies.push(serde_json::from_slice(&message.payload).unwrap_or(Value::Null));
    }
    consumer.shutdown().await;
    bodies
}

/// Sends each consumer of both services, running on the broker `config` names (the same one
/// `env` puts them on), the bodies its schema refuses, and finds every one of them in that
/// consumer's dead letters, as it was sent; none is handled.
async fn refused_messages_are_dead_lettered(
    env: Vec<(&'static str, String)>,
    config: BrokerConfig,
) {
    let broker = myevents_messaging::broker::build(&config, &[]).expect("broker");
    let queue_of = |variable: &str| {
        env.iter()
            .find(|(name, _)| *name == variable)
            .map(|(_, value)| value.clone())
            .expect("queue variable")
    };
    let events = ServiceProcess::start("event-service", &env).await;
    let bookings = ServiceProcess::start("booking-service", &env).await;
    for (service, queue, consumed) in [
        (&bookings, queue_of("BOOKING_QUEUE"), vec![EVENT_CREATED]),
        (
            &events,
            queue_of("EVENTS_QUEUE"),
            vec![EVENT_BOOKED, BOOKING_CANCELLED],
        ),
    ] {
        let ready = format!("{}/readyz", service.url());
        assert!(eventually_answers(&ready, StatusCode::OK, WAIT).await);
        let mut sent = Vec::new();
        for name in &consumed {
            let bodies = refused_bodies(name);
            assert!(bodies.len() >= 4, "{name}: {bodies:?}");
            for body in bodies {
                let payload = serde_json::to_vec(&body).expect("json");
                broker
                    .publisher
                    .publish(&Message::new(*name, UNKNOWN_EVENT, payload))
                    .await
                    .expect("publish");
                sent.push(body);
            }
        }
        let subscription = Subscription::new(queue.clone(), &consumed);
        let mut dead = dead_letters(&broker, &subscription, sent.len()).await;
        dead.sort_by_key(Value::to_string);
        sent.sort_by_key(Value::to_string);
        assert_eq!(
            dead, sent,
            "every refused message is in the dead letters of {queue}, as it was sent"
        );
    }
    // None of them was handled: the booking service sells no event it was sent.
    let answer = Client::new()
        .get(format!(
            "{}/events/{UNKNOWN_EVENT}/bookings",
            bookings.url()
        ))
        .send()
        .await
        .expect("answer");
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    events.kill().await;
    bookings.kill().await;
}

#[tokio::test]
async fn over_rabbitmq_a_message_its_schema_refuses_is_dead_lettered_by_its_consumer() {
    let exchange = unique("events");
    let config = BrokerConfig::RabbitMq {
        url: amqp_url(),
        exchange: exchange.clone(),
        queue_expires: Some(Duration::from_secs(600)),
        queue_type: myevents_broker::config::QueueType::default(),
        ca_file: None,
    };
    refused_messages_are_dead_lettered(services_env(rabbitmq_env_on(&exchange)), config).await;
}

#[cfg(feature = "kafka")]
#[tokio::test]
async fn over_kafka_a_message_its_schema_refuses_is_dead_lettered_by_its_consumer() {
    let env = services_env(myevents_testkit::kafka_env());
    let topic = env
        .iter()
        .find(|(name, _)| *name == "KAFKA_TOPIC")
        .map(|(_, value)| value.clone())
        .expect("KAFKA_TOPIC");
    let config = BrokerConfig::Kafka {
        brokers: myevents_testkit::kafka_brokers()
            .split(',')
            .map(str::to_owned)
            .collect(),
        topic,
        partitions: myevents_broker::config::DEFAULT_PARTITIONS,
        replication: myevents_broker::config::KafkaReplication::default(),
        tls: None,
    };
    refused_messages_are_dead_lettered(env, config).await;
}
