//! The monitoring files in `k8s/monitoring/` stay true to the code: the alert rules are a valid
//! Prometheus rule file whose expressions parse as PromQL (promtool is not available from the
//! registries we use, so this is the check), the Grafana dashboard is valid JSON whose queries parse,
//! and every series either names is one the services export.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;

fn monitoring(file: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../k8s/monitoring")
        .join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every metric name the services export: the families of this process's registry once both services
/// run (the labelled message metrics are touched so that their families are listed), with the
/// `_bucket`, `_sum` and `_count` series of histograms.
async fn exported() -> BTreeSet<String> {
    let suite = myevents::Suite::build(&myevents::SuiteConfig::ephemeral())
        .await
        .expect("suite");
    let handling = myevents_broker::metrics::HandlingMetrics::registered();
    for vec in [
        &handling.consumed,
        &handling.failed,
        &handling.dead_lettered,
    ] {
        vec.with_label_values(&["probe"]);
    }
    handling.handling_seconds.with_label_values(&["probe"]);
    myevents_messaging::metrics::MessagingMetrics::registered("probe")
        .published
        .with_label_values(&["probe", "probe"]);
    let http = myevents_http::metrics::HttpMetrics::registered();
    http.requests
        .with_label_values(&["probe", "GET", "/probe", "200"]);
    http.duration.with_label_values(&["probe", "GET", "/probe"]);
    // Only a MongoDB store has a circuit breaker and commands; the embedded suite runs in memory.
    myevents_store::mongo::CircuitMetrics::registered()
        .state
        .with_label_values(&["probe", "probe"]);
    myevents_store::mongo::CommandMetrics::registered()
        .commands
        .with_label_values(&["probe", "probe"]);
    let _ = myevents_platform::metrics::render();
    let mut names = BTreeSet::new();
    for family in prometheus::gather() {
        let name = family.name().to_owned();
        if family.get_field_type() == prometheus::proto::MetricType::HISTOGRAM {
            for suffix in ["_bucket", "_sum", "_count"] {
                names.insert(format!("{name}{suffix}"));
            }
        }
        names.insert(name);
    }
    drop(suite);
    names
}

/// Parses `expr` as PromQL and returns the metric names it reads (identifiers of our families).
fn metrics_of(expr: &str) -> BTreeSet<String> {
    // Grafana's interval variables stand for durations.
    let expr = expr
        .replace("$__rate_interval", "5m")
        .replace("$__range", "1h");
    if let Err(error) = promql_parser::parser::parse(&expr) {
        panic!("not PromQL: {expr}\n{error}");
    }
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("myevents_") || word.starts_with("process_"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_alert_rules_parse_and_read_only_exported_series() {
    let exported = exported().await;
    let rules: Value = serde_norway::from_str(&monitoring("alerts.yml")).expect("YAML");
    let mut alerts = BTreeSet::new();
    for group in rules["groups"].as_array().expect("groups") {
        assert!(group["name"].is_string());
        for rule in group["rules"].as_array().expect("rules") {
            let alert = rule["alert"].as_str().expect("alert name");
            alerts.insert(alert.to_owned());
            let expr = rule["expr"].as_str().expect("expr");
            let used = metrics_of(expr);
            assert!(!used.is_empty(), "{alert} reads no series of ours");
            for metric in used {
                assert!(
                    exported.contains(&metric),
                    "{alert}: {metric} is not exported"
                );
            }
            assert!(
                ["page", "ticket"].contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
                "{alert}: severity"
            );
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{alert}: summary"
            );
            if let Some(duration) = rule["for"].as_str() {
                assert!(
                    duration.ends_with('m')
                        && duration[..duration.len() - 1].parse::<u32>().is_ok(),
                    "{alert}: for {duration}"
                );
            }
        }
    }
    for wanted in [
        "MyEventsHighErrorRate",
        "MyEventsOutboxBacklogGrowing",
        "MyEventsConsumerStalled",
        "MyEventsConsumerDetached",
        "MyEventsDeadLetters",
    ] {
        assert!(alerts.contains(wanted), "{wanted} missing");
    }
}

#[tokio::test]
async fn the_dashboard_queries_parse_and_read_only_exported_series() {
    let exported = exported().await;
    let dashboard: Value =
        serde_json::from_str(&monitoring("grafana-dashboard.json")).expect("JSON");
    assert_eq!(dashboard["uid"], "myevents");
    let mut covered = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("title");
        for target in panel["targets"].as_array().expect("targets") {
            for metric in metrics_of(target["expr"].as_str().expect("expr")) {
                assert!(
                    exported.contains(&metric),
                    "{title}: {metric} is not exported"
                );
                covered.insert(metric);
            }
        }
    }
    for wanted in [
        "myevents_http_requests_total",
        "myevents_http_request_duration_seconds_bucket",
        "myevents_bookings_count",
        "myevents_seats_per_booking_bucket",
        "myevents_sold_out_rejections_total",
        "myevents_messages_dead_lettered_total",
        "myevents_outbox_pending",
        "myevents_outbox_oldest_pending_age_seconds",
    ] {
        assert!(covered.contains(wanted), "the dashboard shows no {wanted}");
    }
}

/// The value of the series `name{labels}` in the Prometheus text `metrics`, if listed.
fn sample(metrics: &str, name: &str, labels: &str) -> Option<f64> {
    myevents_testkit::metric_value(metrics, &format!("{name}{{{labels}}}"))
}

#[tokio::test]
async fn in_embedded_mode_each_service_reports_its_own_consumer_and_requests() {
    let suite = myevents::Suite::build(&myevents::SuiteConfig::ephemeral())
        .await
        .expect("suite");
    let (events, bookings) = (suite.event_addr(), suite.booking_addr());
    tokio::spawn(suite.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    for addr in [events, bookings] {
        let answer = client
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .expect("request");
        assert!(answer.status().is_success());
    }
    let attached = |service: &str| {
        let labels = format!("service=\"{service}\"");
        sample(
            &myevents_platform::metrics::render(),
            "myevents_consumer_attached",
            &labels,
        )
    };
    let both = myevents_testkit::eventually(std::time::Duration::from_secs(10), || async {
        attached("event-service") == Some(1.0) && attached("booking-service") == Some(1.0)
    })
    .await;
    assert!(both, "{}", myevents_platform::metrics::render());
    let metrics = myevents_platform::metrics::render();
    for service in ["event-service", "booking-service"] {
        // The text format lists labels in alphabetical order.
        let labels =
            format!("method=\"GET\",route=\"/healthz\",service=\"{service}\",status=\"200\"");
        assert_eq!(
            sample(&metrics, "myevents_http_requests_total", &labels),
            Some(1.0),
            "{service}: {metrics}"
        );
        let pending = sample(
            &metrics,
            "myevents_outbox_pending",
            &format!("service=\"{service}\""),
        );
        assert_eq!(pending, Some(0.0), "{service}");
    }
}
