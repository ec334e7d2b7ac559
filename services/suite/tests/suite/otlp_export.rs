//! With `OTEL_EXPORTER_OTLP_ENDPOINT` set, a service binary exports its spans over OTLP/HTTP: a
//! booking request's trace id (from its `traceparent`) reaches the collector. The collector here is a
//! plain HTTP endpoint that keeps what is posted to `/v1/traces` (protobuf
//! `ExportTraceServiceRequest`, in which trace ids are raw 16-byte fields).
#![cfg(feature = "otlp")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use myevents_testkit::{ServiceProcess, eventually};
use reqwest::StatusCode;

const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn spans_of_a_booking_request_are_exported_with_its_trace_id() {
    let received: Arc<Mutex<Vec<Bytes>>> = Arc::default();
    let sink = Arc::clone(&received);
    let collector = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = Arc::clone(&sink);
            async move {
                sink.lock().expect("lock").push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, collector).await });

    let service = ServiceProcess::start(
        "booking-service",
        &[
            ("BROKER_KIND", "memory".to_owned()),
            ("STORE_KIND", "memory".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint),
            ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
        ],
    )
    .await;
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let response = reqwest::Client::new()
        .get(format!(
            "{}/events/6b02917a815f792c3ada999b/bookings",
            service.url()
        ))
        .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-01"))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let raw: Vec<u8> = (0..16)
        .map(|i| u8::from_str_radix(&trace_id[i * 2..i * 2 + 2], 16).expect("hex"))
        .collect();
    let exported = eventually(WAIT, || async {
        received
            .lock()
            .expect("lock")
            .iter()
            .any(|body| body.windows(16).any(|w| w == raw.as_slice()))
    })
    .await;
    assert!(exported, "no exported span with trace id {trace_id}");
    service.kill().await;
}
