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

/// A topic is created with the replication asked for (`min.insync.replicas` included), and a
/// service asking for more replicas than a topic it finds has is told which topics fall short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_created_with_the_replication_asked_and_a_shortfall_is_reported() {
    use myevents_broker::{EventSubscriber, Subscription};
    use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
    use rdkafka::client::DefaultClientContext;

    let topic = format!("events-test-{}", uuid::Uuid::now_v7().simple());
    let mut config = KafkaConfig::new(brokers()).with_topic(&topic);
    // Above the one replica of a test broker (which no publish here needs): not the default,
    // so that the created topic shows the setting reached it.
    config.min_insync_replicas = 2;
    let broker = KafkaBroker::new(config.clone()).expect("adapter");
    broker
        .declare(&Subscription::new("replication", &["eventCreated"]))
        .await
        .expect("topics created");
    assert_eq!(broker.under_replicated().await.expect("metadata"), []);

    let admin: AdminClient<DefaultClientContext> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers().join(","))
        .create()
        .expect("admin client");
    let described = admin
        .describe_configs(
            &[ResourceSpecifier::Topic(&topic)],
            &AdminOptions::new().request_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .expect("described");
    let entries = described
        .into_iter()
        .next()
        .expect("one topic")
        .expect("its configuration")
        .entries;
    let min_insync = entries
        .iter()
        .find(|entry| entry.name == "min.insync.replicas")
        .and_then(|entry| entry.value.clone());
    assert_eq!(min_insync.as_deref(), Some("2"));

    let mut asking_more = config;
    asking_more.replication = 3;
    let asking_more = KafkaBroker::new(asking_more).expect("adapter");
    assert_eq!(
        asking_more.under_replicated().await.expect("metadata"),
        [(topic.clone(), 1), (format!("{topic}.dlq"), 1)]
    );
}
