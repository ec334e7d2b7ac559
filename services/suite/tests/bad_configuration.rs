//! A service binary started with bad configuration stops at once with an error naming the variable.

use std::process::Stdio;

use myevents_testkit::binary_path;

async fn start_fails(binary: &str, variable: &str, value: &str) {
    let output = tokio::process::Command::new(binary_path(binary))
        .env(variable, value)
        .env("LISTEN_URL", "127.0.0.1:0")
        .stdout(Stdio::null())
        .output()
        .await
        .expect("run");
    assert!(
        !output.status.success(),
        "{binary} started with {variable}={value}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(variable), "{binary}: {stderr}");
}

#[tokio::test]
async fn an_unknown_broker_kind_is_named() {
    start_fails("event-service", "BROKER_KIND", "carrier-pigeon").await;
    start_fails("booking-service", "BROKER_KIND", "carrier-pigeon").await;
}

#[tokio::test]
async fn malformed_addresses_urls_and_numbers_are_named() {
    start_fails(
        "event-service",
        "CORS_ALLOWED_ORIGINS",
        "localhost:3000/path",
    )
    .await;
    start_fails("booking-service", "AMQP_BROKER_URL", "http://rabbit").await;
    start_fails("booking-service", "MAX_SEATS_PER_BOOKING", "0").await;
    start_fails("booking-service", "DEFAULT_EVENT_CAPACITY", "-3").await;
}

#[tokio::test]
async fn a_bad_listen_address_is_named() {
    let output = tokio::process::Command::new(binary_path("event-service"))
        .env("LISTEN_URL", "nowhere")
        .stdout(Stdio::null())
        .output()
        .await
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("LISTEN_URL"));
}
