//! A MongoDB lost at run time: clients get 503 with `Retry-After` and readiness says the store is down;
//! once the database is back the service answers again by itself, data intact. The test runs its own
//! MongoDB-wire server (`MYEVENTS_TEST_SECANTUSD`, the SecantusDB server command the test script
//! installs) on persistent storage, and kills it with SIGKILL.
//! The write acknowledged just before the kill must be there after the restart: the store writes with
//! `{w: "majority", j: true}` (with the driver's default, unjournaled `w: 1`, this test loses it).
//! The outbox backlog gauges say the store cannot be read while it is gone, instead of freezing.

use std::time::Duration;

use myevents_broker::memory::InMemoryBroker;
use myevents_event_service::{Application, Dependencies};
use myevents_host::HostConfig;
use myevents_messaging::broker::Broker;
use myevents_store::config::{MongoConfig, StoreConfig};
use myevents_testkit::{
    Answer, eventually, free_port, metric_value, start_mongo_wire_server, unique_database,
};
use reqwest::{Client, StatusCode};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// The event service's `myevents_outbox_backlog_readable`, when listed.
fn backlog_readable() -> Option<f64> {
    metric_value(
        &myevents_platform::metrics::render(),
        "myevents_outbox_backlog_readable{service=\"event-service\"}",
    )
}

#[tokio::test]
async fn a_lost_database_gives_503_and_the_service_recovers_by_itself() {
    let port = free_port();
    let storage = std::env::temp_dir().join(unique_database());
    let mut server = start_mongo_wire_server(port, &storage);

    let mut mongo = MongoConfig::new(format!("mongodb://127.0.0.1:{port}"), unique_database());
    mongo.server_selection_timeout = Duration::from_secs(1);
    mongo.connect_timeout = Duration::from_secs(1);
    let config = myevents_host::Config {
        host: HostConfig::ephemeral("events-service"),
        service: myevents_event_service::config::EventServiceConfig::default(),
    };
    let deps = Dependencies::from_config(
        &StoreConfig::MongoDb(mongo),
        Broker::in_memory(&InMemoryBroker::default()),
    )
    .await
    .expect("store");
    let app = Application::build(&config, deps).await.expect("build");
    let url = format!("http://{}", app.local_addr());
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    let client = Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{url}{path}"));
        async move { Answer::read(request.send().await.expect("request")).await }
    };

    assert!(
        eventually(WAIT, || async {
            get("/readyz").await.status == StatusCode::OK
        })
        .await,
        "ready once the database answers"
    );
    let created = Answer::read(
        client
            .post(format!("{url}/locations"))
            .json(&json!({"Name": "West Hall", "Halls": [{"name": "A", "capacity": 10}]}))
            .send()
            .await
            .expect("request"),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert!(
        eventually(WAIT, || async { backlog_readable() == Some(1.0) }).await,
        "the backlog is read while the database answers"
    );
    let location = format!("/locations/{}", created.body["ID"].as_str().expect("ID"));

    server.kill().await.expect("kill the database");
    let down = get(&location).await;
    down.assert_problem(StatusCode::SERVICE_UNAVAILABLE);
    assert!(down.headers.contains_key("retry-after"));
    let ready = get("/readyz").await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    // Readiness keeps its own body, naming what is down.
    assert_eq!(ready.body["status"], "unavailable", "{}", ready.body);
    assert!(
        ready.body["checks"]["store"]
            .as_str()
            .is_some_and(|reason| reason != "ok"),
        "{}",
        ready.body
    );
    assert_eq!(ready.body["checks"]["shutdown"], "ok");
    assert!(
        eventually(WAIT, || async { backlog_readable() == Some(0.0) }).await,
        "the backlog gauge says the store cannot be read"
    );

    let _server = start_mongo_wire_server(port, &storage);
    assert!(
        eventually(WAIT, || async {
            get("/readyz").await.status == StatusCode::OK
        })
        .await,
        "the service is ready again once the database is back"
    );
    assert_eq!(get(&location).await.body, created.body);
    assert_eq!(get("/readyz").await.status, StatusCode::OK);
    assert!(
        eventually(WAIT, || async { backlog_readable() == Some(1.0) }).await,
        "the backlog is read again"
    );
    let _ = std::fs::remove_dir_all(&storage);
}
