//! The HTTP series (Prometheus, default registry; see `myevents_platform::metrics`), as
//! [`HttpMetrics`], handed to the middleware stack through `crate::layers::Edge`:
//! `myevents_http_requests_total{service, method, route, status}`,
//! `myevents_http_request_duration_seconds{service, method, route}` (histogram, seconds) and
//! `myevents_http_rate_limited_total{service}`.

use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::response::Response;
use myevents_platform::metrics::registered;
use prometheus::{HistogramVec, IntCounterVec, register_histogram_vec, register_int_counter_vec};

/// The HTTP series (one set per process: [`HttpMetrics::registered`]).
#[derive(Debug)]
pub struct HttpMetrics {
    /// HTTP requests answered, by service, method, route template and status.
    pub requests: IntCounterVec,
    /// HTTP request latency in seconds, by service, method and route template.
    pub duration: HistogramVec,
    /// Requests answered 429, by service (see [`crate::rate_limit`]).
    pub rate_limited: IntCounterVec,
}

impl HttpMetrics {
    /// The process's series: registered in the default registry by the first call (so that they
    /// are listed before the first request) and shared by every later one, since the registry
    /// takes each name once. A `'static` reference: the middleware counts every request through
    /// it without touching a reference count.
    pub fn registered() -> &'static Self {
        static METRICS: LazyLock<HttpMetrics> = LazyLock::new(|| HttpMetrics {
            requests: registered(
                "myevents_http_requests_total",
                register_int_counter_vec!(
                    "myevents_http_requests_total",
                    "HTTP requests answered, by service, method, route template and status code.",
                    &["service", "method", "route", "status"]
                ),
            ),
            duration: registered(
                "myevents_http_request_duration_seconds",
                register_histogram_vec!(
                    "myevents_http_request_duration_seconds",
                    "Time to answer an HTTP request, in seconds, by service, method and route template.",
                    &["service", "method", "route"],
                    vec![
                        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                        10.0
                    ]
                ),
            ),
            rate_limited: registered(
                "myevents_http_rate_limited_total",
                register_int_counter_vec!(
                    "myevents_http_rate_limited_total",
                    "API requests refused with 429 because their caller was over its rate limit.",
                    &["service"]
                ),
            ),
        });
        &METRICS
    }
}

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

impl HttpMetrics {
    /// Counts an answer of `service` in [`HttpMetrics::requests`] and [`HttpMetrics::duration`]
    /// (`elapsed` from the request to the answer's head), by method (see [`method_label`]), route
    /// template (the answer's [`MatchedPath`], which the router's layer around every route puts
    /// there; `unmatched` for requests no route matched) and status code: every label is bounded
    /// whatever the clients send.
    pub fn record(
        &self,
        service: &'static str,
        method: &'static str,
        answer: &Response,
        elapsed: Duration,
    ) {
        let route = answer
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        self.duration
            .with_label_values(&[service, method, route])
            .observe(elapsed.as_secs_f64());
        self.requests
            .with_label_values(&[service, method, route, answer.status().as_str()])
            .inc();
    }
}
