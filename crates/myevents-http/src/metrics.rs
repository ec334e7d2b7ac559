//! The HTTP series (Prometheus, default registry; see `myevents_platform::metrics`):
//! `myevents_http_requests_total{service, method, route, status}` and
//! `myevents_http_request_duration_seconds{service, method, route}` (histogram, seconds).

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use myevents_platform::metrics::registered;
use prometheus::{HistogramVec, IntCounterVec, register_histogram_vec, register_int_counter_vec};

/// HTTP requests answered, by service, method, route template and status.
pub static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(
        "myevents_http_requests_total",
        register_int_counter_vec!(
            "myevents_http_requests_total",
            "HTTP requests answered, by service, method, route template and status code.",
            &["service", "method", "route", "status"]
        ),
    )
});

/// HTTP request latency in seconds, by service, method and route template.
pub static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    registered(
        "myevents_http_request_duration_seconds",
        register_histogram_vec!(
            "myevents_http_request_duration_seconds",
            "Time to answer an HTTP request, in seconds, by service, method and route template.",
            &["service", "method", "route"],
            vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
            ]
        ),
    )
});

/// The `method` label of a request: one of the methods of RFC 9110 (and `PATCH`), else `other`, so
/// that clients cannot create series with made-up methods.
pub fn method_label(method: &http::Method) -> &'static str {
    use http::Method;
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// Axum middleware recording [`HTTP_REQUESTS`] and [`HTTP_DURATION`] for the service named by its
/// state, by method (see [`method_label`]), route template (`unmatched` for requests no route
/// matched) and status code: every label is bounded whatever the clients send.
pub async fn record_http(
    State(service): State<&'static str>,
    request: Request,
    next: Next,
) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    HTTP_DURATION
        .with_label_values(&[service, method, route])
        .observe(started.elapsed().as_secs_f64());
    HTTP_REQUESTS
        .with_label_values(&[service, method, route, response.status().as_str()])
        .inc();
    response
}

/// Registers the series, so that they are listed before the first request.
pub fn register() {
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&HTTP_DURATION);
}
