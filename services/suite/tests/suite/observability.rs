//! What an operator sees, end to end over the real RabbitMQ and the MongoDB-wire server, with both
//! service binaries as processes: `/metrics` on each service's metrics port parses as Prometheus text
//! and holds the promised series after some traffic, with route templates and never an id in a label;
//! the `traceparent` of a booking request shows up in the consumer's log line on the event service;
//! SIGTERM during a burst of bookings lets every started request finish, and the process exits 0;
//! the `RUST_LOG` the configuration reference gives for silencing the access log does.

use std::time::Duration;

use myevents_broker::{EventPublisher, Message};
use myevents_testkit::post_json;
use myevents_testkit::{
    ServiceProcess, eventually, eventually_answers, rabbitmq_broker_on, unique, unique_database,
};
use myevents_testkit::{mongo_env, rabbitmq_env_on};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(30);

struct Pair {
    events: ServiceProcess,
    bookings: ServiceProcess,
    exchange: String,
    client: Client,
}

async fn ready(service: &ServiceProcess) {
    let url = format!("{}/readyz", service.url());
    assert!(
        eventually_answers(&url, StatusCode::OK, WAIT).await,
        "{url} ready"
    );
}

async fn start_pair() -> Pair {
    let exchange = unique("events");
    let mut env = rabbitmq_env_on(&exchange);
    env.extend(mongo_env());
    env.extend([
        ("MAX_SEATS_PER_BOOKING", "4".to_owned()),
        ("SHUTDOWN_DELAY", "1".to_owned()),
        // Requests get two thirds of this to finish after SIGTERM: the burst below (200 bookings of
        // three writes each, two on one inventory document, on the MongoDB-wire test server: some
        // 15 to 30 a second under the suite's load) needs more than the default 25 s would give.
        ("SHUTDOWN_TIMEOUT", "40".to_owned()),
    ]);
    let client = Client::new();
    let bookings = ServiceProcess::start("booking-service", &env).await;
    ready(&bookings).await;
    env.push(("MONGO_DATABASE", unique_database()));
    let events = ServiceProcess::start("event-service", &env).await;
    ready(&events).await;
    Pair {
        events,
        bookings,
        exchange,
        client,
    }
}

impl Pair {
    /// Creates an event of `capacity` seats and waits until the booking service knows it.
    async fn event(&self, capacity: u32) -> String {
        let created: Value = post_json(
            &self.client,
            format!("{}/events", self.events.url()),
            &json!({"Name":"opera aida","StartDate":1_768_000_000_i64,
                "EndDate":1_768_007_200_i64,"Capacity":capacity,
                "Location":{"Name":"West Hall","Halls":[{"name":"A","capacity":capacity}]}}),
        )
        .await;
        let id = created["ID"].as_str().expect("ID").to_owned();
        let url = format!("{}/events/{id}/bookings", self.bookings.url());
        assert!(
            eventually_answers(&url, StatusCode::OK, WAIT).await,
            "the booking service learned of {id}"
        );
        id
    }

    async fn metrics(&self, service: &ServiceProcess) -> Scrape {
        let text = self
            .client
            .get(format!("{}/metrics", service.metrics_url()))
            .send()
            .await
            .expect("request")
            .text()
            .await
            .expect("text");
        parse(&text).unwrap_or_else(|e| panic!("not Prometheus text: {e}\n{text}"))
    }
}

/// One sample of the text exposition format.
struct Sample {
    metric: String,
    labels: std::collections::BTreeMap<String, String>,
    value: f64,
}

struct Scrape {
    samples: Vec<Sample>,
}

/// Parses the Prometheus text exposition format (version 0.0.4: `# HELP`/`# TYPE` comments, then
/// `name{label="value",...} value`, label values with `\\`, `\"` and `\n` escapes), strictly:
/// any other line is an error.
fn parse(text: &str) -> Result<Scrape, String> {
    let name_ok = |n: &str| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            && !n.as_bytes()[0].is_ascii_digit()
    };
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            match (words.next(), words.next()) {
                (Some("HELP" | "TYPE"), Some(name)) if name_ok(name) => continue,
                _ => return Err(format!("bad comment: {line}")),
            }
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| format!("no value: {line}"))?;
        let metric = &line[..name_end];
        if !name_ok(metric) {
            return Err(format!("bad name: {line}"));
        }
        let mut labels = std::collections::BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(after) = rest.strip_prefix('{') {
            let mut chars = after.char_indices().peekable();
            loop {
                let (start, c) = chars.next().ok_or_else(|| format!("open labels: {line}"))?;
                if c == '}' {
                    rest = &after[start + 1..];
                    break;
                }
                if c == ',' {
                    continue;
                }
                let eq = after[start..]
                    .find('=')
                    .ok_or_else(|| format!("label: {line}"))?
                    + start;
                let key = &after[start..eq];
                if !name_ok(key) || after.as_bytes().get(eq + 1) != Some(&b'"') {
                    return Err(format!("bad label: {line}"));
                }
                while chars.peek().is_some_and(|(i, _)| *i <= eq + 1) {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    match chars.next() {
                        Some((_, '"')) => break,
                        Some((_, '\\')) => match chars.next() {
                            Some((_, 'n')) => value.push('\n'),
                            Some((_, e @ ('\\' | '"'))) => value.push(e),
                            _ => return Err(format!("bad escape: {line}")),
                        },
                        Some((_, c)) => value.push(c),
                        None => return Err(format!("open label value: {line}")),
                    }
                }
                labels.insert(key.to_owned(), value);
            }
        }
        let value_text = rest.trim().split(' ').next().unwrap_or_default();
        let value = match value_text {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            text => text.parse().map_err(|_| format!("bad value: {line}"))?,
        };
        samples.push(Sample {
            metric: metric.to_owned(),
            labels,
            value,
        });
    }
    Ok(Scrape { samples })
}

fn total(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .sum()
}

fn has(scrape: &Scrape, metric: &str) -> bool {
    scrape.samples.iter().any(|s| s.metric == metric)
}

fn looks_like_an_id(text: &str) -> bool {
    text.split('/')
        .any(|part| part.len() == 24 && part.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_and_traces_show_what_happened_across_both_services() {
    let pair = start_pair().await;
    let event = pair.event(3).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let booked = pair
        .client
        .post(format!("{}/events/{event}/bookings", pair.bookings.url()))
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
        .header("x-user-id", "alice")
        .json(&json!({"seats": 3}))
        .send()
        .await
        .expect("request");
    assert_eq!(booked.status(), StatusCode::CREATED);
    let refused = pair
        .client
        .post(format!("{}/events/{event}/bookings", pair.bookings.url()))
        .json(&json!({"seats": 1}))
        .send()
        .await
        .expect("request");
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    for path in [
        format!("/events/{event}"),
        "/events/000000000000000000000000".to_owned(),
    ] {
        pair.client
            .get(format!("{}{path}", pair.events.url()))
            .send()
            .await
            .expect("request");
    }
    // A message nobody can read: dead-lettered by the booking service.
    rabbitmq_broker_on(&pair.exchange)
        .publish(&Message::new("eventCreated", "x", b"not json".to_vec()))
        .await
        .expect("publish poison");

    // The booking's trace reaches the event service's consumer.
    let consumer_line = |logs: &str| {
        logs.lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .any(|line| {
                line["message"] == "message handled"
                    && line["span"]["trace_id"] == trace_id
                    && line["span"]["event_name"] == "eventBooked"
            })
    };
    assert!(
        eventually(WAIT, || async { consumer_line(&pair.events.log_text()) }).await,
        "no consumer log line with trace {trace_id}:\n{}",
        pair.events.log_text()
    );
    assert!(
        pair.bookings.log_text().contains(trace_id),
        "the request span has the trace id"
    );

    // Metrics of the booking service.
    assert!(
        eventually(WAIT, || async {
            let bookings = pair.metrics(&pair.bookings).await;
            total(
                &bookings,
                "myevents_messages_dead_lettered_total",
                &[("event_name", "eventCreated")],
            ) >= 1.0
                && total(
                    &bookings,
                    "myevents_messages_published_total",
                    &[("event_name", "eventBooked")],
                ) >= 1.0
        })
        .await,
        "dead-lettered and published counted"
    );
    let bookings = pair.metrics(&pair.bookings).await;
    let route = "/events/{id}/bookings";
    assert_eq!(
        total(
            &bookings,
            "myevents_http_requests_total",
            &[("method", "POST"), ("route", route), ("status", "201")]
        ),
        1.0
    );
    assert_eq!(
        total(
            &bookings,
            "myevents_http_requests_total",
            &[("method", "POST"), ("route", route), ("status", "409")]
        ),
        1.0
    );
    assert!(
        total(
            &bookings,
            "myevents_http_request_duration_seconds_count",
            &[("route", route)]
        ) >= 2.0
    );
    assert_eq!(total(&bookings, "myevents_bookings_count", &[]), 1.0);
    assert_eq!(
        total(&bookings, "myevents_seats_per_booking_count", &[]),
        1.0
    );
    assert_eq!(
        total(
            &bookings,
            "myevents_seats_per_booking_bucket",
            &[("le", "2")]
        ),
        0.0,
        "3 seats fall in the bucket le=3, not le=2"
    );
    assert_eq!(
        total(
            &bookings,
            "myevents_seats_per_booking_bucket",
            &[("le", "3")]
        ),
        1.0
    );
    assert_eq!(
        total(&bookings, "myevents_sold_out_rejections_total", &[]),
        1.0
    );
    assert!(
        total(
            &bookings,
            "myevents_messages_consumed_total",
            &[("event_name", "eventCreated")]
        ) >= 1.0
    );
    assert!(
        total(
            &bookings,
            "myevents_messages_failed_total",
            &[("event_name", "eventCreated")]
        ) >= 1.0
    );
    for series in [
        "myevents_outbox_pending",
        "myevents_outbox_oldest_pending_age_seconds",
        "myevents_message_handling_seconds_bucket",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_open_fds",
    ] {
        assert!(has(&bookings, series), "{series} missing");
    }

    // Metrics of the event service: route templates, never ids.
    let events = pair.metrics(&pair.events).await;
    assert_eq!(
        total(
            &events,
            "myevents_http_requests_total",
            &[("route", "/events/{id}"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(
        total(
            &events,
            "myevents_http_requests_total",
            &[("route", "/events/{id}"), ("status", "404")]
        ),
        1.0
    );
    assert!(
        total(
            &events,
            "myevents_messages_published_total",
            &[("event_name", "eventCreated")]
        ) >= 1.0
    );
    assert!(
        eventually(WAIT, || async {
            let events = pair.metrics(&pair.events).await;
            total(
                &events,
                "myevents_messages_consumed_total",
                &[("event_name", "eventBooked")],
            ) >= 1.0
        })
        .await
    );
    for scrape in [&bookings, &events] {
        for sample in &scrape.samples {
            for (name, value) in &sample.labels {
                assert!(
                    !looks_like_an_id(value),
                    "{} has an id in label {name}={value}",
                    sample.metric
                );
            }
        }
    }
    pair.events.kill().await;
    pair.bookings.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_lets_every_started_request_finish_then_exits_0() {
    let pair = start_pair().await;
    let event = pair.event(10_000).await;
    let url = format!("{}/events/{event}/bookings", pair.bookings.url());
    let ready_url = format!("{}/readyz", pair.bookings.url());
    // A burst that queues on the store: each request waits its turn for a connection.
    let burst: Vec<_> = (0..200)
        .map(|i| {
            let request = pair
                .client
                .post(&url)
                .header("x-user-id", format!("fan{i}"))
                .json(&json!({"seats": 1}));
            tokio::spawn(async move { request.send().await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(150)).await;
    let Pair {
        events,
        bookings,
        client,
        ..
    } = pair;
    let terminated = tokio::spawn(bookings.terminate(Duration::from_secs(45)));
    // Draining: readiness says 503 while requests still come in (SHUTDOWN_DELAY=1).
    assert!(
        eventually(Duration::from_secs(1), || async {
            client
                .get(&ready_url)
                .send()
                .await
                .is_ok_and(|r| r.status() == StatusCode::SERVICE_UNAVAILABLE)
        })
        .await,
        "readiness 503 while shutting down"
    );
    let mut answered = 0;
    let mut not_started = 0;
    for request in burst {
        match request.await.expect("task") {
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                assert_eq!(status, StatusCode::CREATED, "{body}");
                answered += 1;
            }
            Err(error) if error.is_connect() => not_started += 1,
            Err(error) => panic!("a started request got no answer: {error}"),
        }
    }
    assert!(
        answered > 0,
        "{answered} answered, {not_started} refused at connect"
    );
    let status = terminated.await.expect("task");
    assert!(status.success(), "exit status {status}");
    events.kill().await;
}

/// `docs/configuration.md`'s `RUST_LOG` for silencing the per-request access log does: the request
/// is answered, nothing logs it, and the service's other info lines are still written; with the
/// default filter the same request gets its access line.
#[tokio::test]
async fn the_documented_filter_silences_the_access_log_and_nothing_else() {
    let memory = [
        ("BROKER_KIND", "memory".to_owned()),
        ("STORE_KIND", "memory".to_owned()),
    ];
    let mut filtered = memory.to_vec();
    filtered.push(("RUST_LOG", "info,myevents_http::layers=warn".to_owned()));
    let quiet = ServiceProcess::start("event-service", &filtered).await;
    let logged = ServiceProcess::start("event-service", &memory).await;
    let access = "finished processing request";
    for service in [&quiet, &logged] {
        let answer = reqwest::get(format!("{}/events", service.url()))
            .await
            .expect("GET /events");
        assert_eq!(answer.status(), StatusCode::OK);
    }
    logged.await_logged(WAIT, &[access]).await;
    // The quiet one answered first: had it logged the request, the line would be there by now.
    assert!(!quiet.logged(access), "{}", quiet.log_text());
    assert!(
        quiet.logged("http server listening"),
        "{}",
        quiet.log_text()
    );
}
