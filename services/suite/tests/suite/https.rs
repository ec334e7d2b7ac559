//! HTTPS on a service binary's listener: it answers with the certificate its files hold, and when
//! the files are replaced (as cert-manager rotates a Secret) new connections get the new certificate
//! without a restart.

use std::time::Duration;

use myevents_testkit::{ServiceProcess, eventually};
use reqwest::StatusCode;

/// A self-signed certificate for `localhost` and 127.0.0.1: (certificate PEM, key PEM, DER).
fn certificate() -> (String, String, Vec<u8>) {
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("certificate");
    (
        generated.cert.pem(),
        generated.signing_key.serialize_pem(),
        generated.cert.der().to_vec(),
    )
}

/// The DER certificate the service presents on a new connection, trusting `roots` only.
async fn presented(url: &str, roots: &[&str]) -> Option<Vec<u8>> {
    let mut client = reqwest::Client::builder()
        .tls_info(true)
        .pool_max_idle_per_host(0);
    for root in roots {
        client = client.add_root_certificate(
            reqwest::Certificate::from_pem(root.as_bytes()).expect("PEM certificate"),
        );
    }
    let response = client.build().expect("client").get(url).send().await.ok()?;
    assert_eq!(response.status(), StatusCode::OK);
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate().map(<[u8]>::to_vec))
}

#[tokio::test]
async fn the_listener_serves_its_certificate_and_a_replaced_one_without_a_restart() {
    let directory = std::env::temp_dir().join(myevents_testkit::unique("tls"));
    std::fs::create_dir_all(&directory).expect("directory");
    let (cert_path, key_path) = (directory.join("tls.crt"), directory.join("tls.key"));
    let (first_pem, first_key, first_der) = certificate();
    std::fs::write(&cert_path, &first_pem).expect("write");
    std::fs::write(&key_path, &first_key).expect("write");
    let service = ServiceProcess::start(
        "event-service",
        &[
            ("BROKER_KIND", "memory".to_owned()),
            ("STORE_KIND", "memory".to_owned()),
            ("TLS_CERT_FILE", cert_path.display().to_string()),
            ("TLS_KEY_FILE", key_path.display().to_string()),
        ],
    )
    .await;
    let url = format!("https://localhost:{}/events", service.addr.port());
    assert_eq!(presented(&url, &[&first_pem]).await, Some(first_der));
    // Plain HTTP is not served on the TLS port.
    let plain = reqwest::get(format!("http://127.0.0.1:{}/events", service.addr.port())).await;
    assert!(plain.map_or(true, |r| r.status() != StatusCode::OK));

    // A file that is not a certificate is refused and the certificate in use stays.
    std::fs::write(&cert_path, "not a certificate").expect("write");
    assert!(
        eventually(Duration::from_secs(15), || async {
            service.logged("cannot be used; keeping the one in use")
        })
        .await,
        "{}",
        service.log_text()
    );
    assert!(presented(&url, &[&first_pem]).await.is_some());

    let (second_pem, second_key, second_der) = certificate();
    std::fs::write(&key_path, &second_key).expect("write");
    std::fs::write(&cert_path, &second_pem).expect("write");
    let roots = [first_pem.as_str(), second_pem.as_str()];
    assert!(
        eventually(Duration::from_secs(15), || async {
            presented(&url, &roots).await.as_deref() == Some(second_der.as_slice())
        })
        .await,
        "the replaced certificate is served: {}",
        service.log_text()
    );
    assert!(
        !service.log_text().contains(second_key.trim()),
        "the key was logged"
    );
    let _ = std::fs::remove_dir_all(&directory);
}
