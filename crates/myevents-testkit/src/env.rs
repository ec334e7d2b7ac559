//! The test environment: addresses of the real servers, unique names, the variables that put service
//! binaries on them, free ports, and (feature `rabbitmq`) broker adapters on fresh exchanges.

use std::time::Duration;

/// The RabbitMQ the tests talk to: `MYEVENTS_TEST_AMQP_URL`, default
/// `amqp://guest:guest@127.0.0.1:5672/%2f`.
pub fn amqp_url() -> String {
    std::env::var("MYEVENTS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

/// The MongoDB-wire server the tests talk to: `MYEVENTS_TEST_MONGO_URL`, default
/// `mongodb://127.0.0.1:27017`.
pub fn mongo_url() -> String {
    std::env::var("MYEVENTS_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017".to_owned())
}

/// The Kafka-protocol broker the tests use: `MYEVENTS_TEST_KAFKA_BROKERS` (comma-separated), default
/// `127.0.0.1:9092`.
pub fn kafka_brokers() -> String {
    std::env::var("MYEVENTS_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
}

/// The AWS-API server (SNS, SQS) the tests use: `MYEVENTS_TEST_AWS_ENDPOINT`, default
/// `http://127.0.0.1:5005` (the test command starts moto in server mode).
pub fn aws_endpoint() -> String {
    std::env::var("MYEVENTS_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5005".to_owned())
}

/// A database name no other test uses (`myevents_test_<uuid>`).
pub fn unique_database() -> String {
    format!("myevents_test_{}", uuid::Uuid::now_v7().simple())
}

/// Idle test queues are deleted by RabbitMQ after this long.
pub const QUEUE_EXPIRES: Duration = Duration::from_secs(600);

/// `prefix-test-<uuid>`: a name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-test-{}", uuid::Uuid::now_v7().simple())
}

/// An environment of service binaries (variable, value).
pub type Env = Vec<(&'static str, String)>;

/// The variables that put both service binaries on the real RabbitMQ, on `exchange` and queues no
/// other test uses (deleted by RabbitMQ once idle for [`QUEUE_EXPIRES`]).
pub fn rabbitmq_env_on(exchange: &str) -> Env {
    vec![
        ("BROKER_KIND", "rabbitmq".to_owned()),
        ("AMQP_BROKER_URL", amqp_url()),
        ("AMQP_EXCHANGE", exchange.to_owned()),
        ("BOOKING_QUEUE", unique("booking")),
        ("EVENTS_QUEUE", unique("events-service")),
        ("AMQP_QUEUE_EXPIRES", QUEUE_EXPIRES.as_secs().to_string()),
    ]
}

/// [`rabbitmq_env_on`] a fresh exchange.
pub fn rabbitmq_env() -> Env {
    rabbitmq_env_on(&unique("events"))
}

/// The variables that put both service binaries on the Kafka-protocol test broker, on a topic and
/// consumer groups no other test uses.
pub fn kafka_env() -> Env {
    vec![
        ("BROKER_KIND", "kafka".to_owned()),
        ("KAFKA_BROKER_URLS", kafka_brokers()),
        ("KAFKA_TOPIC", unique("events")),
        ("BOOKING_QUEUE", unique("booking")),
        ("EVENTS_QUEUE", unique("events-service")),
    ]
}

/// The variables that put both service binaries on SNS + SQS of the AWS-API test server, on a topic
/// and queues no other test uses: its endpoint, a region, and test credentials unless the
/// environment has some (the test server takes any).
pub fn sqs_env() -> Env {
    let mut env = aws_env();
    env.extend([
        ("BROKER_KIND", "sqs".to_owned()),
        ("SQS_TOPIC", unique("events")),
        ("BOOKING_QUEUE", unique("booking")),
        ("EVENTS_QUEUE", unique("events-service")),
    ]);
    env
}

/// The variables that point the AWS SDK of a service binary at the AWS-API test server: its
/// endpoint, a region, and test credentials unless the environment has some (the test server takes
/// any).
pub fn aws_env() -> Env {
    let credential = |name: &str| std::env::var(name).unwrap_or_else(|_| "testing".to_owned());
    vec![
        ("AWS_ENDPOINT_URL", aws_endpoint()),
        ("AWS_REGION", "eu-west-1".to_owned()),
        ("AWS_ACCESS_KEY_ID", credential("AWS_ACCESS_KEY_ID")),
        ("AWS_SECRET_ACCESS_KEY", credential("AWS_SECRET_ACCESS_KEY")),
    ]
}

/// The variables that put a service binary on the MongoDB-wire test server, in a fresh database.
pub fn mongo_env() -> Env {
    vec![
        ("STORE_KIND", "mongodb".to_owned()),
        ("MONGO_URL", mongo_url()),
        ("MONGO_DATABASE", unique_database()),
    ]
}

/// A RabbitMQ adapter on its own fresh exchange, with quick retries.
#[cfg(feature = "rabbitmq")]
pub fn rabbitmq_broker() -> myevents_broker::rabbitmq::RabbitMqBroker {
    rabbitmq_broker_on(&unique("events"))
}

/// A RabbitMQ adapter on `exchange` (e.g. the one a service process under test uses), with quick
/// retries and expiring queues.
#[cfg(feature = "rabbitmq")]
pub fn rabbitmq_broker_on(exchange: &str) -> myevents_broker::rabbitmq::RabbitMqBroker {
    use myevents_broker::rabbitmq::{RabbitMqBroker, RabbitMqConfig};
    let mut config = RabbitMqConfig::new(amqp_url());
    config.exchange = exchange.to_owned();
    config.queue_expires = Some(QUEUE_EXPIRES);
    config.retry = myevents_broker::RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    RabbitMqBroker::new(config)
}

/// A TCP port on 127.0.0.1 that nothing listens on now, below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768 and up by default). Another process may still
/// take it before the caller binds it, but never as the source port of an outgoing connection,
/// which a port from the ephemeral range can become while its server is down or not started yet:
/// a client reconnecting to it can then be connected to itself (TCP simultaneous open), and the
/// server cannot bind it.
///
/// # Panics
/// When no port from 10000 to the start of the ephemeral range can be bound.
pub fn free_port() -> u16 {
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let (low, high) = (10_000, ephemeral_start.max(10_001));
    // Start at a point of the range that differs per call and per process, then walk it.
    let span = u32::from(high - low);
    let random = uuid::Uuid::now_v7().as_u128() & u128::from(u64::MAX);
    let start = u32::try_from(random % u128::from(span)).unwrap_or(0);
    (0..span)
        .map(|offset| low + u16::try_from((start + offset) % span).unwrap_or(0))
        .find(|&port| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port below the ephemeral range")
}
