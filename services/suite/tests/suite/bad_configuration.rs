//! A service binary started with bad configuration stops at once with an error naming the variable.

use std::process::Stdio;

use myevents_testkit::binary_path;

async fn start_fails(binary: &str, variable: &str, value: &str) {
    start_fails_with(binary, &[], variable, value).await;
}

/// As [`start_fails`], with `env` set as well.
async fn start_fails_with(binary: &str, env: &[(&str, String)], variable: &str, value: &str) {
    let output = tokio::process::Command::new(binary_path(binary))
        .env("AUTH_MODE", "off")
        .envs(env.iter().map(|(k, v)| (k, v)))
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
async fn sqs_settings_out_of_range_are_named() {
    let sqs = [("BROKER_KIND", "sqs".to_owned())];
    start_fails_with("booking-service", &sqs, "SQS_VISIBILITY_TIMEOUT", "0").await;
    start_fails_with("booking-service", &sqs, "SQS_MAX_RECEIVE_COUNT", "1001").await;
    start_fails_with("event-service", &sqs, "SQS_TOPOLOGY", "sometimes").await;
}

/// Over SNS + SQS, what retrying cannot mend stops the start with what to do: no region, or a
/// topology the deployment was to create (`SQS_TOPOLOGY=check`) and did not.
#[tokio::test]
async fn sqs_without_a_region_or_without_the_deployments_topology_stops_the_start() {
    let output = tokio::process::Command::new(binary_path("booking-service"))
        .env("AUTH_MODE", "off")
        .env("LISTEN_URL", "127.0.0.1:0")
        .env("STORE_KIND", "memory")
        .envs(myevents_testkit::sqs_env())
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        // No instance metadata to ask for one either (the SDK's last resort).
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(Stdio::null())
        .output()
        .await
        .expect("run");
    assert!(!output.status.success(), "started without a region");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("AWS_REGION"), "{stderr}");

    let mut env = myevents_testkit::sqs_env();
    env.push(("STORE_KIND", "memory".to_owned()));
    start_fails_with("event-service", &env, "SQS_TOPOLOGY", "check").await;
}

#[tokio::test]
async fn the_binaries_verify_tokens_by_default_and_refuse_to_start_without_keys() {
    for binary in ["event-service", "booking-service"] {
        let output = tokio::process::Command::new(binary_path(binary))
            .env_remove("AUTH_MODE")
            .env("LISTEN_URL", "127.0.0.1:0")
            .env("STORE_KIND", "memory")
            .env("BROKER_KIND", "memory")
            .stdout(Stdio::null())
            .output()
            .await
            .expect("run");
        assert!(!output.status.success(), "{binary} started without keys");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("AUTH_MODE") && stderr.contains("AUTH_JWKS_URL"),
            "{binary}: {stderr}"
        );
    }
    start_fails("event-service", "AUTH_MODE", "maybe").await;
    let short = tokio::process::Command::new(binary_path("booking-service"))
        .env("AUTH_MODE", "jwt")
        .env("AUTH_HS256_SECRET", "too-short-secret")
        .env("AUTH_ISSUER", "local")
        .env("AUTH_AUDIENCE", "myevents")
        .env("LISTEN_URL", "127.0.0.1:0")
        .stdout(Stdio::null())
        .output()
        .await
        .expect("run");
    let stderr = String::from_utf8_lossy(&short.stderr);
    assert!(!short.status.success());
    assert!(stderr.contains("AUTH_HS256_SECRET"), "{stderr}");
    assert!(
        !stderr.contains("too-short-secret"),
        "the secret is shown: {stderr}"
    );
}

#[tokio::test]
async fn a_bad_listen_address_is_named() {
    let output = tokio::process::Command::new(binary_path("event-service"))
        .env("AUTH_MODE", "off")
        .env("LISTEN_URL", "nowhere")
        .stdout(Stdio::null())
        .output()
        .await
        .expect("run");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("LISTEN_URL"));
}

#[tokio::test]
async fn a_credential_file_that_cannot_be_read_or_is_given_twice_is_named() {
    start_fails("event-service", "MONGO_URL_FILE", "/nonexistent/mongo-url").await;
    start_fails(
        "booking-service",
        "AMQP_BROKER_URL_FILE",
        "/nonexistent/amqp-url",
    )
    .await;
    let empty = std::env::temp_dir().join(myevents_testkit::unique("empty-credential"));
    std::fs::write(&empty, "\n").expect("write");
    start_fails(
        "booking-service",
        "MONGO_URL_FILE",
        &empty.to_string_lossy(),
    )
    .await;
    // Both the variable and its file: which one wins would be a guess.
    let output = tokio::process::Command::new(binary_path("booking-service"))
        .env("AUTH_MODE", "jwt")
        .env("AUTH_HS256_SECRET", "0123456789abcdef0123456789abcdef")
        .env("AUTH_HS256_SECRET_FILE", &empty)
        .env("LISTEN_URL", "127.0.0.1:0")
        .stdout(Stdio::null())
        .output()
        .await
        .expect("run");
    assert!(!output.status.success(), "started with both");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("set only one of AUTH_HS256_SECRET and AUTH_HS256_SECRET_FILE"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(empty);
}

/// A subscription queue that exists as a classic queue while `AMQP_QUEUE_TYPE` asks for quorum
/// (the default) stops the start with an error naming the queue, both types and the fix, not the
/// broker's bare PRECONDITION_FAILED; with `AMQP_QUEUE_TYPE=classic` the service goes on with it.
#[tokio::test]
async fn a_queue_of_another_type_stops_the_start_naming_both_types_and_the_fix() {
    use myevents_broker::config::QueueType;
    use myevents_broker::{EventSubscriber, Subscription};
    let mut env = myevents_testkit::rabbitmq_env();
    let queue = env
        .iter()
        .find(|(name, _)| *name == "BOOKING_QUEUE")
        .map(|(_, value)| value.clone())
        .expect("a queue of the test's own");
    let exchange = env
        .iter()
        .find(|(name, _)| *name == "AMQP_EXCHANGE")
        .map(|(_, value)| value.clone())
        .expect("an exchange of the test's own");
    // An earlier version's classic queue, as an operator upgrading would have it.
    let mut classic = myevents_broker::rabbitmq::RabbitMqConfig::new(myevents_testkit::amqp_url());
    classic.exchange = exchange;
    classic.queue_expires = Some(myevents_testkit::QUEUE_EXPIRES);
    classic.queue_type = QueueType::Classic;
    myevents_broker::rabbitmq::RabbitMqBroker::new(classic)
        .declare(&Subscription::new(queue.clone(), &["eventCreated"]))
        .await
        .expect("a classic queue");

    env.push(("STORE_KIND", "memory".to_owned()));
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::process::Command::new(binary_path("booking-service"))
            .env("AUTH_MODE", "off")
            .env("LISTEN_URL", "127.0.0.1:0")
            .env("METRICS_LISTEN_URL", "127.0.0.1:0")
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdout(Stdio::null())
            .output(),
    )
    .await
    .expect("stops within 30 s")
    .expect("run");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started over a classic queue");
    for named in [
        queue.as_str(),
        "exists as a classic queue",
        "asks for a quorum queue",
        "AMQP_QUEUE_TYPE=classic",
    ] {
        assert!(stderr.contains(named), "{named:?} not in: {stderr}");
    }

    env.push(("AMQP_QUEUE_TYPE", "classic".to_owned()));
    let service = myevents_testkit::ServiceProcess::start("booking-service", &env).await;
    service.kill().await;
}
