//! The broker conformance suite against a real Kafka-protocol broker at `MYEVENTS_TEST_KAFKA_BROKERS`
//! (comma-separated, default `127.0.0.1:9092`). Each check uses its own topic.

use std::sync::Arc;
use std::time::Duration;

use myevents_broker::RetryPolicy;
use myevents_broker::conformance::BrokerUnderTest;
use myevents_broker_kafka::{KafkaBroker, KafkaConfig};

fn brokers() -> Vec<String> {
    std::env::var("MYEVENTS_TEST_KAFKA_BROKERS")
        .unwrap_or_else(|_| "127.0.0.1:9092".to_owned())
        .split(',')
        .map(str::to_owned)
        .collect()
}

myevents_broker::broker_conformance!(async {
    let mut config = KafkaConfig::new(brokers())
        .with_topic(format!("events-test-{}", uuid::Uuid::now_v7().simple()));
    config.session_timeout = Duration::from_secs(6);
    config.retry = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    let broker = KafkaBroker::new(config).expect("adapter");
    BrokerUnderTest::new(Arc::new(broker.clone()), Arc::new(broker))
});
