//! Hostile clients against the real binaries over loopback: whatever methods and paths a client makes
//! up, the metrics keep the same series (bounded labels), so `/metrics` cannot be blown up.

use myevents_testkit::ServiceProcess;
use reqwest::Method;

/// The number of `myevents_http_*` series (sample lines) the service exports.
async fn http_series(metrics: &str) -> usize {
    reqwest::get(format!("{metrics}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("text")
        .lines()
        .filter(|line| line.starts_with("myevents_http_"))
        .count()
}

/// Sends request `i`: a made-up method, to a made-up path (even `i`) or to a real route (odd `i`).
async fn made_up(client: &reqwest::Client, base: &str, i: usize) {
    let method =
        Method::from_bytes(format!("M{i}{}", "X".repeat(i % 64)).as_bytes()).expect("method");
    let path = if i.is_multiple_of(2) {
        format!("/made-up/{i}/{}", "p".repeat(i % 100))
    } else {
        "/healthz".to_owned()
    };
    let response = client
        .request(method, format!("{base}{path}"))
        .send()
        .await
        .expect("answer");
    assert!(response.status().is_client_error(), "{}", response.status());
}

#[tokio::test]
async fn ten_thousand_made_up_methods_and_paths_add_no_metric_series() {
    for binary in ["event-service", "booking-service"] {
        let service = ServiceProcess::start_in_memory(binary).await;
        let client = reqwest::Client::new();
        let base = service.url();
        // One of each shape first: an unknown route, and a real route with an unknown method.
        made_up(&client, &base, 0).await;
        made_up(&client, &base, 1).await;
        let before = http_series(&service.metrics_url()).await;
        let mut workers = tokio::task::JoinSet::new();
        for worker in 0..50 {
            let (client, base) = (client.clone(), base.clone());
            workers.spawn(async move {
                for i in (2 + worker..10_002).step_by(50) {
                    made_up(&client, &base, i).await;
                }
            });
        }
        while let Some(done) = workers.join_next().await {
            done.expect("worker");
        }
        let after = http_series(&service.metrics_url()).await;
        assert_eq!(
            before, after,
            "{binary}: 10,000 made-up requests added series"
        );
    }
}
