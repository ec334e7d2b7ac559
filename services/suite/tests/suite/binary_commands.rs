//! The service binaries' own commands, as the container images use them: `healthcheck` (the images
//! have no shell or HTTP client) exits 0 only while the service it probes is ready, and `version`
//! prints the same build as `GET /version` serves and the start-up log line names.

use std::time::Duration;

use myevents_testkit::{ServiceProcess, binary_path, eventually_answers, unique};
use reqwest::StatusCode;
use serde_json::Value;

/// Runs `binary` with `args`, `LISTEN_URL` set to `listen`, in memory; returns (exit code, stdout).
async fn run(binary: &str, args: &[&str], listen: &str) -> (i32, String) {
    run_with(binary, args, listen, &[]).await
}

/// [`run`] with more variables.
async fn run_with(
    binary: &str,
    args: &[&str],
    listen: &str,
    env: &[(&str, String)],
) -> (i32, String) {
    let output = tokio::process::Command::new(binary_path(binary))
        .args(args)
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .env("LISTEN_URL", listen)
        .env("BROKER_KIND", "memory")
        .env("STORE_KIND", "memory")
        .output()
        .await
        .expect("run the binary");
    (
        output.status.code().expect("exit code"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

#[tokio::test]
async fn healthcheck_passes_only_while_the_service_answers_ready() {
    for binary in ["event-service", "booking-service"] {
        let service = ServiceProcess::start_in_memory(binary).await;
        assert!(
            eventually_answers(
                &format!("{}/readyz", service.url()),
                StatusCode::OK,
                Duration::from_secs(30)
            )
            .await
        );
        // A service listening on every interface is probed on loopback.
        let everywhere = format!("0.0.0.0:{}", service.addr.port());
        let listen = service.addr.to_string();
        assert_eq!(
            run(binary, &["healthcheck"], &everywhere).await.0,
            0,
            "{binary}"
        );
        assert_eq!(
            run(binary, &["healthcheck", "/healthz"], &listen).await.0,
            0
        );
        assert_eq!(
            run(binary, &["healthcheck", "/no-such-route"], &listen)
                .await
                .0,
            1,
            "{binary}: a 404 is unhealthy"
        );
        service.kill().await;
        assert_eq!(
            run(binary, &["healthcheck"], &listen).await.0,
            1,
            "{binary}: nothing listens any more"
        );
        assert_eq!(
            run(binary, &["healthcheck", "no-slash"], &listen).await.0,
            2
        );
    }
}

#[tokio::test]
async fn healthcheck_probes_an_https_listener_trusting_its_certificate_only() {
    let directory = std::env::temp_dir().join(unique("healthcheck-tls"));
    std::fs::create_dir_all(&directory).expect("directory");
    let pair = |name: &str| {
        let generated =
            rcgen::generate_simple_self_signed(vec!["tickets.example".to_owned()]).expect("cert");
        let (cert, key) = (
            directory.join(format!("{name}.crt")),
            directory.join(format!("{name}.key")),
        );
        std::fs::write(&cert, generated.cert.pem()).expect("write");
        std::fs::write(&key, generated.signing_key.serialize_pem()).expect("write");
        vec![
            ("TLS_CERT_FILE", cert.display().to_string()),
            ("TLS_KEY_FILE", key.display().to_string()),
        ]
    };
    let (served, other) = (pair("served"), pair("other"));
    for binary in ["event-service", "booking-service"] {
        let mut env = served.clone();
        env.extend([
            ("BROKER_KIND", "memory".to_owned()),
            ("STORE_KIND", "memory".to_owned()),
        ]);
        let service = ServiceProcess::start(binary, &env).await;
        let everywhere = format!("0.0.0.0:{}", service.addr.port());
        // The certificate names another host: the probe trusts the certificate, not a name.
        assert_eq!(
            run_with(binary, &["healthcheck"], &everywhere, &served)
                .await
                .0,
            0,
            "{binary}: {}",
            service.log_text()
        );
        assert_eq!(
            run(binary, &["healthcheck"], &everywhere).await.0,
            1,
            "{binary}: plain HTTP is not served on the TLS listener"
        );
        assert_eq!(
            run_with(binary, &["healthcheck"], &everywhere, &other)
                .await
                .0,
            1,
            "{binary}: a listener presenting another certificate is not trusted"
        );
        service.kill().await;
    }
    let _ = std::fs::remove_dir_all(&directory);
}

#[tokio::test]
async fn help_lists_every_command_and_the_variables_that_matter_and_exits_0() {
    for (binary, commands) in [
        (
            "event-service",
            &["healthcheck", "version", "dead-letters", "token"][..],
        ),
        (
            "booking-service",
            &["healthcheck", "version", "dead-letters", "token"][..],
        ),
        ("myevents", &["token"][..]),
    ] {
        let (code, printed) = run(binary, &["--help"], "127.0.0.1:0").await;
        assert_eq!(code, 0, "{binary} --help");
        for expected in commands.iter().chain(&["Usage", "docs/configuration.md"]) {
            assert!(
                printed.contains(expected),
                "{binary}: no {expected} in\n{printed}"
            );
        }
        let (code, _) = run(binary, &["no-such-command"], "127.0.0.1:0").await;
        assert_eq!(code, 2, "{binary} no-such-command");
    }
}

#[tokio::test]
async fn version_prints_what_get_version_serves_and_the_start_up_log_names() {
    for binary in ["event-service", "booking-service"] {
        let (code, printed) = run(binary, &["version"], "127.0.0.1:0").await;
        assert_eq!(code, 0);
        let printed: Value = serde_json::from_str(printed.trim()).expect("JSON");
        assert_eq!(printed["service"], binary);
        assert_eq!(printed["version"], env!("CARGO_PKG_VERSION"));
        assert!(printed["commit"].as_str().is_some_and(|c| !c.is_empty()));

        let service = ServiceProcess::start_in_memory(binary).await;
        let served: Value = reqwest::get(format!("{}/version", service.url()))
            .await
            .expect("GET /version")
            .json()
            .await
            .expect("JSON");
        assert_eq!(served, printed);
        assert!(
            service.logged(&format!("starting {binary}"))
                && service.logged(printed["commit"].as_str().expect("commit")),
            "{}",
            service.log_text()
        );
    }
}

#[tokio::test]
async fn a_start_up_failure_exits_with_status_1_and_the_error_alone() {
    // The metrics port is taken; the broker is the real RabbitMQ, so a connection could be open.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let metrics = taken.local_addr().expect("addr").to_string();
    for binary in ["event-service", "booking-service"] {
        let output = tokio::time::timeout(
            Duration::from_secs(30),
            tokio::process::Command::new(binary_path(binary))
                .env("AUTH_MODE", "off")
                .env("LISTEN_URL", "127.0.0.1:0")
                .env("METRICS_LISTEN_URL", &metrics)
                .env("BROKER_KIND", "rabbitmq")
                .env("AMQP_BROKER_URL", myevents_testkit::amqp_url())
                .env("BOOKING_QUEUE", myevents_testkit::unique("booking"))
                .env("EVENTS_QUEUE", myevents_testkit::unique("events-service"))
                .env("AMQP_QUEUE_EXPIRES", "600")
                .env("STORE_KIND", "memory")
                .env("LOG_FORMAT", "json")
                .env_remove("RUST_BACKTRACE")
                .env_remove("RUST_LIB_BACKTRACE")
                .output(),
        )
        .await
        .expect("exits within 30 s")
        .expect("run the binary");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{binary}: {stderr}");
        assert_eq!(
            stderr.trim(),
            format!(
                "error: cannot listen on {metrics} (METRICS_LISTEN_URL): Address already in use \
                 (os error 98)"
            ),
            "{binary}"
        );
    }
}
