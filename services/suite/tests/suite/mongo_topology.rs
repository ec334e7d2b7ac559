//! What a service's MongoDB offers, checked at start-up. The event service records each consumed
//! message and its effect in one multi-document transaction, which a standalone `mongod` refuses
//! ("Transaction numbers are only allowed on a replica set member or mongos", code 20): against a
//! server started `--standalone` it stays unready, says why once in its log and in `/readyz`, and
//! answers 503 instead of failing each message it consumes. The booking service, which needs no
//! transaction, is ready on the same server. (The MongoDB-wire test server started `--standalone`
//! still runs transactions, more lenient than `mongod`: only the service's own check can catch the
//! mistake before a real standalone server does.)

use std::ffi::OsString;
use std::time::Duration;

use myevents_testkit::{
    Answer, ServiceProcess, eventually, eventually_answers, free_port,
    start_mongo_wire_server_with, unique_database,
};
use reqwest::{Client, StatusCode};

const WAIT: Duration = Duration::from_secs(30);

/// How many log lines of `service` contain `text`.
fn lines_with(service: &ServiceProcess, text: &str) -> usize {
    service
        .logs
        .lock()
        .expect("log lock")
        .iter()
        .filter(|line| line.contains(text))
        .count()
}

#[tokio::test]
async fn a_standalone_mongodb_keeps_the_event_service_unready_with_the_reason_and_the_fix() {
    let port = free_port();
    let _server = start_mongo_wire_server_with(
        port,
        std::path::Path::new(":memory:"),
        &[OsString::from("--standalone")],
    );
    let listening = eventually(WAIT, || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
    })
    .await;
    assert!(listening, "the MongoDB-wire test server did not listen");
    let env = |database: String| {
        vec![
            ("BROKER_KIND", "memory".to_owned()),
            ("STORE_KIND", "mongodb".to_owned()),
            ("MONGO_URL", format!("mongodb://127.0.0.1:{port}")),
            ("MONGO_DATABASE", database),
        ]
    };
    let events = ServiceProcess::start("event-service", &env(unique_database())).await;
    let bookings = ServiceProcess::start("booking-service", &env(unique_database())).await;
    let client = Client::new();

    let refused = eventually(WAIT, || async {
        let answer = Answer::read(
            client
                .get(format!("{}/readyz", events.url()))
                .send()
                .await
                .expect("request"),
        )
        .await;
        answer.status == StatusCode::SERVICE_UNAVAILABLE
            && answer.body["checks"]["store"]
                .as_str()
                .is_some_and(|s| s.contains("standalone server") && s.contains("replicaSet=rs0"))
    })
    .await;
    assert!(
        refused,
        "/readyz does not name the standalone server:\n{}",
        events.log_text()
    );
    let list = Answer::read(
        client
            .get(format!("{}/events", events.url()))
            .send()
            .await
            .expect("request"),
    )
    .await;
    list.assert_problem(StatusCode::SERVICE_UNAVAILABLE);

    // The check is repeated (the set of a replica set member may not be initiated yet), the log line
    // written once: several attempts later, still one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let refusals = lines_with(
        &events,
        r#""level":"ERROR","message":"MongoDB is a standalone server"#,
    );
    assert_eq!(refusals, 1, "{}", events.log_text());
    assert!(
        eventually_answers(&format!("{}/readyz", bookings.url()), StatusCode::OK, WAIT).await,
        "the booking service needs no transaction but is not ready:\n{}",
        bookings.log_text()
    );
}
