//! A Kafka consume loop that cannot dead-letter a message ends; the host restarts it with backoff,
//! counts the restarts, and once the loop has kept failing for longer than `CONSUMER_FAILING_LIMIT`
//! `/healthz` answers 503 so that the orchestrator restarts the process.
//!
//! The test runs its own Kafka-protocol broker (`MYEVENTS_TEST_TANSU`, the Tansu binary the test
//! script installs) with a schema registry whose schema for the dead-letter topic rejects every
//! record (`INVALID_RECORD`): the broker refuses that one topic, as a deleted or read-only
//! dead-letter topic would, while the main topic works.
#![cfg(feature = "kafka")]

use std::time::Duration;

use myevents_broker::Message;
use myevents_broker::config::BrokerConfig;
use myevents_domain::messages::EVENT_BOOKED;
use myevents_event_service::{Application, Dependencies};
use myevents_host::HostConfig;
use myevents_store::config::StoreConfig;
use myevents_testkit::{eventually, free_port, start_kafka_wire_server, unique};
use reqwest::StatusCode;
use tokio::process::Child;

/// Tansu on `port`, with `registry` (an absolute path) as its schema registry.
async fn start_tansu(port: u16, registry: &std::path::Path) -> Child {
    start_kafka_wire_server(
        port,
        &format!("127.0.0.1:{port}"),
        &[
            "--schema-registry".into(),
            format!("file://{}", registry.display()).into(),
        ],
    )
    .await
}

async fn status(client: &reqwest::Client, url: &str) -> Option<StatusCode> {
    client.get(url).send().await.ok().map(|r| r.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_cannot_dead_letter_is_restarted_and_healthz_fails_past_the_limit() {
    let topic = unique("events");
    let registry = std::env::temp_dir().join(unique("schemas"));
    std::fs::create_dir_all(&registry).expect("registry");
    // Every record's key must be "never": no dead letter is accepted.
    std::fs::write(
        registry.join(format!("{topic}.dlq.json")),
        r#"{"type": "object", "properties": {"key": {"type": "string", "pattern": "^never$"}}, "required": ["key"]}"#,
    )
    .expect("schema");
    let port = free_port();
    let _tansu = start_tansu(port, &registry).await;
    let brokers = vec![format!("127.0.0.1:{port}")];
    let broker = myevents_messaging::broker::build(
        &BrokerConfig::Kafka {
            brokers: brokers.clone(),
            topic: topic.clone(),
            partitions: 1,
            replication: myevents_broker::config::KafkaReplication::default(),
            tls: None,
        },
        &[],
    )
    .expect("adapter");

    let limit = Duration::from_secs(5);
    let mut host = HostConfig::ephemeral(unique("events-service"));
    host.consumer_failing_limit = limit;
    let config = myevents_host::Config {
        host,
        service: myevents_event_service::config::EventServiceConfig::default(),
    };
    let deps = Dependencies::from_config(&StoreConfig::Memory, broker.clone())
        .await
        .expect("store");
    let app = Application::build(&config, deps).await.expect("build");
    let base = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let (healthz, readyz) = (format!("{base}/healthz"), format!("{base}/readyz"));
    assert!(
        eventually(Duration::from_secs(60), || async {
            status(&client, &readyz).await == Some(StatusCode::OK)
        })
        .await,
        "the consumer attaches"
    );

    // A message the handler rejects (not JSON): it must go to the dead-letter topic, which refuses it.
    broker
        .publisher
        .publish(&Message::new(
            EVENT_BOOKED,
            "6b026ab2686c822a56b0fe36",
            b"not json".to_vec(),
        ))
        .await
        .expect("published");
    let metrics_text = || async { myevents_platform::metrics::render() };
    let restarted = eventually(Duration::from_secs(60), || async {
        metrics_text().await.lines().any(|line| {
            line.starts_with("myevents_consumer_restarts_total")
                && line.contains(&config.host.queue)
                && !line.ends_with(" 0")
        })
    })
    .await;
    assert!(restarted, "the consume loop ended and was restarted");
    // Within the limit the process is still healthy.
    assert_eq!(status(&client, &healthz).await, Some(StatusCode::OK));
    // Past it (the loop keeps ending on the same record), liveness fails.
    assert!(
        eventually(Duration::from_secs(90), || async {
            status(&client, &healthz).await == Some(StatusCode::SERVICE_UNAVAILABLE)
        })
        .await,
        "healthz fails once the loop has kept failing for {limit:?}"
    );
    let body: serde_json::Value = client
        .get(&healthz)
        .send()
        .await
        .expect("healthz")
        .json()
        .await
        .expect("json");
    assert_eq!(body["status"], "failing", "{body}");
}
