//! Both service binaries over TLS to MongoDB and to Kafka, with a certificate generated now and
//! trusted through `MONGO_URL`'s `tlsCAFile` and `KAFKA_SSL_CA_FILE`: an event created on one service
//! is booked on the other and its seats are counted back, every message and every document over TLS.
//! Without the CA, a service does not trust the server and stays unready.
//!
//! MongoDB: SecantusDB, the MongoDB-wire test server, with its own TLS listener (TLS only).
//!
//! Kafka: Tansu 0.6, the Kafka-protocol test broker, cannot switch its TLS listener on — its
//! `--cert` and `--key` flags are declared in one mutually exclusive argument group, and TLS needs
//! both — so the test terminates TLS in front of it: a rustls listener (the services' own
//! [`TlsTerminator`]) relays each connection to Tansu's plain port, and Tansu advertises the TLS port,
//! so that every connection of the clients (bootstrap and partition leaders alike) goes through TLS.
//! The relay counts the handshakes it completed and the ones the client broke off.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use myevents_http::tls::{TlsFiles, TlsTerminator};
use myevents_testkit::{
    ServiceProcess, an_event_is_booked_across, eventually, free_port, start_kafka_wire_server,
    start_mongo_wire_server_with, unique, unique_database,
};
use reqwest::StatusCode;

const WAIT: Duration = Duration::from_secs(30);

/// Handshakes of the TLS relay in front of the Kafka broker.
#[derive(Default)]
struct Handshakes {
    completed: AtomicUsize,
    refused: AtomicUsize,
}

/// Accepts TLS connections on `listener` and relays their bytes to `127.0.0.1:upstream`.
async fn relay(
    listener: tokio::net::TcpListener,
    terminator: TlsTerminator,
    upstream: u16,
    handshakes: Arc<Handshakes>,
) {
    while let Ok((socket, _)) = listener.accept().await {
        let acceptor = terminator.acceptor().clone();
        let handshakes = Arc::clone(&handshakes);
        tokio::spawn(async move {
            let Ok(mut tls) = acceptor.accept(socket).await else {
                handshakes.refused.fetch_add(1, Ordering::Relaxed);
                return;
            };
            handshakes.completed.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await {
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            }
        });
    }
}

/// `MONGO_URL` of the TLS server on `port`, trusting `ca` when given.
fn mongo_url(port: u16, ca: Option<&Path>) -> String {
    let trust = ca.map_or(String::new(), |ca| format!("&tlsCAFile={}", ca.display()));
    format!("mongodb://localhost:{port}/?tls=true{trust}")
}

async fn readyz(service: &ServiceProcess) -> StatusCode {
    reqwest::get(format!("{}/readyz", service.url()))
        .await
        .expect("readyz")
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_services_use_mongodb_and_kafka_over_tls_with_a_trusted_certificate_only() {
    // Both names: SecantusDB announces itself as a replica set member at 127.0.0.1, which the
    // driver then connects to by that address.
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    let directory = std::env::temp_dir().join(unique("tls-servers"));
    std::fs::create_dir_all(&directory).expect("directory");
    let file = |name: &str, text: String| -> PathBuf {
        let path = directory.join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    // Self-signed: the certificate is its own CA.
    let cert = file("cert.pem", generated.cert.pem());
    let key = file("key.pem", generated.signing_key.serialize_pem());

    let mongo_port = free_port();
    let _mongo = start_mongo_wire_server_with(
        mongo_port,
        Path::new(":memory:"),
        &[
            "--tls-cert-file".into(),
            cert.clone().into(),
            "--tls-key-file".into(),
            key.clone().into(),
        ],
    );

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("TLS port");
    let tls_port = listener.local_addr().expect("address").port();
    let kafka_port = free_port();
    let _kafka = start_kafka_wire_server(kafka_port, &format!("localhost:{tls_port}"), &[]).await;
    let terminator = TlsTerminator::start(&TlsFiles {
        cert: cert.clone(),
        key: key.clone(),
    })
    .expect("terminator");
    let handshakes = Arc::new(Handshakes::default());
    tokio::spawn(relay(
        listener,
        terminator,
        kafka_port,
        Arc::clone(&handshakes),
    ));
    let topic = unique("events");
    let kafka = |ca: Option<&Path>| {
        let mut env = vec![
            ("BROKER_KIND", "kafka".to_owned()),
            ("KAFKA_BROKER_URLS", format!("localhost:{tls_port}")),
            ("KAFKA_TOPIC", topic.clone()),
            ("KAFKA_SECURITY_PROTOCOL", "ssl".to_owned()),
        ];
        if let Some(ca) = ca {
            env.push(("KAFKA_SSL_CA_FILE", ca.display().to_string()));
        }
        env
    };

    // Not trusting the database's certificate, the service never reaches its store.
    let untrusting = ServiceProcess::start(
        "booking-service",
        &[
            ("BROKER_KIND", "memory".to_owned()),
            ("STORE_KIND", "mongodb".to_owned()),
            ("MONGO_URL", mongo_url(mongo_port, None)),
            ("MONGO_DATABASE", unique_database()),
        ],
    )
    .await;
    untrusting
        .await_logged(WAIT, &["certificate", "Certificate"])
        .await;
    assert_eq!(readyz(&untrusting).await, StatusCode::SERVICE_UNAVAILABLE);
    untrusting.kill().await;

    // Not trusting the broker's certificate, the service's client breaks off every handshake and
    // its consumer never attaches.
    let untrusting = ServiceProcess::start("booking-service", &{
        let mut env = kafka(None);
        env.push(("STORE_KIND", "memory".to_owned()));
        env.push(("BOOKING_QUEUE", unique("booking")));
        env
    })
    .await;
    assert!(
        eventually(WAIT, || async {
            handshakes.refused.load(Ordering::Relaxed) > 0
        })
        .await,
        "the client refused the broker's certificate: {}",
        untrusting.log_text()
    );
    assert_eq!(readyz(&untrusting).await, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        handshakes.completed.load(Ordering::Relaxed),
        0,
        "no connection was made without trusting the certificate"
    );
    untrusting.kill().await;

    let both = |database: String, queue: &str| {
        let mut env = kafka(Some(&cert));
        env.extend([
            ("STORE_KIND", "mongodb".to_owned()),
            ("MONGO_URL", mongo_url(mongo_port, Some(&cert))),
            ("MONGO_DATABASE", database),
            ("BOOKING_QUEUE", unique(queue)),
            ("EVENTS_QUEUE", unique(queue)),
        ]);
        env
    };
    let bookings =
        ServiceProcess::start("booking-service", &both(unique_database(), "booking")).await;
    let events = ServiceProcess::start("event-service", &both(unique_database(), "events")).await;
    an_event_is_booked_across(&events, &bookings, "Kafka with TLS").await;
    assert!(
        handshakes.completed.load(Ordering::Relaxed) > 0,
        "the broker connections went through TLS"
    );
    let _ = std::fs::remove_dir_all(&directory);
}
