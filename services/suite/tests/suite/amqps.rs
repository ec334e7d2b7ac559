//! Both service binaries over `amqps://`: a RabbitMQ node the test starts with a TLS listener only
//! (a certificate generated now, trusted through `AMQP_CA_FILE`); an event created on one service is
//! booked on the other and its seats are counted back, every message over TLS. Without the CA the
//! service does not trust the broker and stays unready.

use std::time::Duration;

use myevents_testkit::{ServiceProcess, TlsRabbitMq, an_event_is_booked_across, unique};
use reqwest::StatusCode;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn the_services_exchange_messages_over_amqps_with_a_trusted_certificate_only() {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let cert = generated.cert.pem();
    let broker = TlsRabbitMq::start(&cert, &generated.signing_key.serialize_pem()).await;
    let ca = std::env::temp_dir().join(unique("broker-ca"));
    std::fs::write(&ca, &cert).expect("write CA");

    // Not trusting the broker's certificate, the consumer never attaches.
    let untrusting = ServiceProcess::start(
        "booking-service",
        &[
            ("BROKER_KIND", "rabbitmq".to_owned()),
            ("AMQP_BROKER_URL", broker.url()),
            ("BOOKING_QUEUE", unique("booking")),
            ("EVENTS_QUEUE", unique("events-service")),
            ("AMQP_QUEUE_EXPIRES", "600".to_owned()),
            ("STORE_KIND", "memory".to_owned()),
        ],
    )
    .await;
    untrusting
        .await_logged(WAIT, &["certificate", "Certificate"])
        .await;
    let ready = reqwest::get(format!("{}/readyz", untrusting.url()))
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    untrusting.kill().await;

    let env = vec![
        ("BROKER_KIND", "rabbitmq".to_owned()),
        ("AMQP_BROKER_URL", broker.url()),
        ("AMQP_CA_FILE", ca.display().to_string()),
        ("AMQP_EXCHANGE", unique("events")),
        // Queues of the test's own: the default ones belong to whoever runs the services here.
        ("BOOKING_QUEUE", unique("booking")),
        ("EVENTS_QUEUE", unique("events-service")),
        ("AMQP_QUEUE_EXPIRES", "600".to_owned()),
        ("STORE_KIND", "memory".to_owned()),
    ];
    let bookings = ServiceProcess::start("booking-service", &env).await;
    let events = ServiceProcess::start("event-service", &env).await;
    an_event_is_booked_across(&events, &bookings, "amqps").await;
    let _ = std::fs::remove_file(&ca);
}
