//! Hostile clients against the real binaries over loopback: made-up methods and paths add no metric
//! series; slow-header, slow-body and idle connections are ended and leave probes and requests
//! answering; an oversized `Content-Length` gets 413 at once; huge error answers under idempotency
//! keys are not kept; hostile dates and ids on the MongoDB store never get a 5xx.

use std::time::{Duration, Instant};

use myevents_testkit::ServiceProcess;
use reqwest::{Method, StatusCode};
use serde_json::Value;

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

/// Opens a connection to `addr` and writes `bytes` (a request that stops half-way).
async fn stalled(addr: std::net::SocketAddr, bytes: &'static [u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    stream
}

/// What the server sends on `stream` before it closes it, waiting at most `wait`; `None` if it is
/// still open then.
async fn until_closed(stream: &mut tokio::net::TcpStream, wait: Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    read.ok()
        .map(|_| String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_leave_probes_and_requests_answering() {
    let service = ServiceProcess::start(
        "booking-service",
        &[
            ("BROKER_KIND", "memory".to_owned()),
            ("STORE_KIND", "memory".to_owned()),
            ("HTTP_MAX_CONCURRENT_REQUESTS", "100".to_owned()),
            ("HTTP_HEADER_READ_TIMEOUT", "3".to_owned()),
            ("HTTP_BODY_READ_TIMEOUT", "3".to_owned()),
        ],
    )
    .await;
    let addr = service.addr;
    let mut slow_bodies = Vec::new();
    let mut slow_headers = Vec::new();
    for _ in 0..200 {
        slow_bodies.push(
            stalled(
                addr,
                b"POST /events/6b026ab2686c822a56b0fe36/bookings HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n{",
            )
            .await,
        );
        slow_headers
            .push(stalled(addr, b"GET /users/u/bookings HTTP/1.1\r\nhost: x\r\nx-slow").await);
    }
    let mut idle = stalled(addr, b"").await;
    let client = reqwest::Client::new();
    for path in ["/healthz", "/readyz", "/users/anonymous/bookings"] {
        let started = Instant::now();
        let response = tokio::time::timeout(
            Duration::from_secs(1),
            client.get(format!("{}{path}", service.url())).send(),
        )
        .await
        .unwrap_or_else(|_| panic!("{path}: no answer within 1 s"))
        .expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    // A Content-Length over the limit is refused at once, before any of the body.
    let mut oversized = stalled(
        addr,
        b"POST /events/6b026ab2686c822a56b0fe36/bookings HTTP/1.1\r\nhost: x\r\ncontent-length: 10000000\r\nconnection: close\r\n\r\n",
    )
    .await;
    let answer = until_closed(&mut oversized, Duration::from_secs(1))
        .await
        .expect("answered and closed within 1 s");
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    // The server ends them all after their time-outs (3 s), slow bodies with a 408 problem.
    for stream in &mut slow_bodies {
        let answer = until_closed(stream, Duration::from_secs(10))
            .await
            .expect("closed");
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }
    for stream in slow_headers.iter_mut().chain([&mut idle]) {
        assert!(
            until_closed(stream, Duration::from_secs(10))
                .await
                .is_some(),
            "still open"
        );
    }
}

#[tokio::test]
async fn a_thousand_keyed_requests_with_huge_error_answers_keep_memory_flat() {
    let service = ServiceProcess::start_in_memory("event-service").await;
    let client = reqwest::Client::new();
    let halls: Vec<_> = (0..1400)
        .map(|_| serde_json::json!({"name": "", "capacity": -1}))
        .collect();
    let body = serde_json::json!({"Name": "x", "Halls": halls}).to_string();
    let metrics = format!("{}/metrics", service.metrics_url());
    let resident = || async {
        myevents_testkit::metric_value(
            &myevents_testkit::scrape(&metrics).await,
            "process_resident_memory_bytes",
        )
        .expect("process_resident_memory_bytes")
    };
    let mut answer_size = 0;
    let mut before = 0.0;
    for i in 0..1000 {
        if i == 100 {
            before = resident().await;
        }
        let response = client
            .post(format!("{}/locations", service.url()))
            .header("idempotency-key", format!("key-{i}"))
            .body(body.clone())
            .send()
            .await
            .expect("answer");
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
        answer_size = response.bytes().await.expect("body").len();
    }
    let growth = resident().await - before;
    assert!(
        answer_size > 50_000,
        "each answer is large ({answer_size} bytes)"
    );
    // 900 such answers kept would be 900 × answer_size (tens of MB); none is kept.
    assert!(
        growth < 16.0 * 1024.0 * 1024.0,
        "resident memory grew by {growth} bytes over 900 keyed requests"
    );
}

/// Dates at and around every edge a store or the message format has, and random ones.
fn hostile_date(rng: &mut impl rand::Rng) -> Value {
    const EDGES: [i64; 10] = [
        i64::MIN,
        -1,
        0,
        1,
        253_402_300_799,
        253_402_300_800,
        1_288_293_858_685,
        9_223_372_036_854_775,
        9_223_372_036_854_776,
        i64::MAX,
    ];
    match rng.random_range(0..4) {
        0 => Value::from(EDGES[rng.random_range(0..EDGES.len())]),
        1 => Value::from(rng.random::<i64>()),
        2 => Value::from(rng.random::<f64>() * 1e20),
        _ => Value::from(rng.random_range(0..300_000_000_000_i64)),
    }
}

/// Ids of every malformed shape, and well-formed ones that name nothing.
fn hostile_id(rng: &mut impl rand::Rng) -> String {
    let hex: String = (0..24)
        .map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)]))
        .collect();
    match rng.random_range(0..6) {
        0 => hex,
        1 => hex[..23].to_owned(),
        2 => hex.to_uppercase(),
        3 => "%ff%fe".to_owned(),
        4 => "%E2%9C%93".repeat(rng.random_range(1..40)),
        _ => "a".repeat(rng.random_range(1..3000)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_dates_and_ids_on_the_mongodb_store_never_get_a_5xx() {
    use rand::{Rng, SeedableRng};
    let service = ServiceProcess::start(
        "event-service",
        &[
            ("BROKER_KIND", "memory".to_owned()),
            ("STORE_KIND", "mongodb".to_owned()),
            ("MONGO_URL", myevents_testkit::mongo_url()),
            ("MONGO_DATABASE", myevents_testkit::unique_database()),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let base = service.url();
    let location: Value = client
        .post(format!("{base}/locations"))
        .json(&serde_json::json!({"Name": "Hall", "Halls": [{"name": "A", "capacity": 10}]}))
        .send()
        .await
        .expect("answer")
        .json()
        .await
        .expect("json");
    let seed: u64 = rand::random();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut created = 0;
    for case in 0..400 {
        let (start, end, duration) = if case % 4 == 0 {
            // A valid event now and then, anywhere in the range, to be stored and read back.
            let start = rng.random_range(0..=253_402_300_799_i64);
            let end = start
                .saturating_add(rng.random_range(0..86_400))
                .min(253_402_300_799);
            (
                Value::from(start),
                Value::from(end),
                Value::from(rng.random_range(0..600)),
            )
        } else {
            (
                hostile_date(&mut rng),
                hostile_date(&mut rng),
                hostile_date(&mut rng),
            )
        };
        let body = serde_json::json!({
            "Name": "hostile", "StartDate": start, "EndDate": end, "Duration": duration,
            "Location": {"ID": location["ID"]},
        });
        let response = client
            .post(format!("{base}/events"))
            .json(&body)
            .send()
            .await
            .expect("answer");
        let status = response.status();
        assert!(
            !status.is_server_error(),
            "seed {seed}, case {case}: {status} for {body}"
        );
        if status == StatusCode::CREATED {
            created += 1;
        } else {
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
        let path = ["events", "events/id", "locations", "events/name"][case % 4];
        let id = hostile_id(&mut rng);
        let response = client
            .get(format!("{base}/{path}/{id}"))
            .send()
            .await
            .expect("answer");
        assert!(
            !response.status().is_server_error(),
            "seed {seed}: {} for /{path}/{id}",
            response.status()
        );
        assert!(
            response.status() == StatusCode::OK
                || response.headers()["content-type"] == "application/problem+json"
        );
    }
    assert!(created > 0, "seed {seed}: no valid event among the cases");
    let listed = client
        .get(format!("{base}/events"))
        .send()
        .await
        .expect("answer");
    assert_eq!(
        listed.status(),
        StatusCode::OK,
        "the stored events read back"
    );
}
