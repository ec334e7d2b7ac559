//! The HTTP series (Prometheus, default registry; see `myevents_platform::metrics`), as
//! [`HttpMetrics`], handed to the middleware stack through `crate::layers::Edge`:
//! `myevents_http_requests_total{service, method, route, status}`,
//! `myevents_http_request_duration_seconds{service, method, route}` (histogram, seconds) and
//! `myevents_http_rate_limited_total{service}`.

use std::cell::RefCell;
use std::sync::LazyLock;
use std::time::Duration;

use axum::extract::MatchedPath;
use axum::response::Response;
use http::StatusCode;
use myevents_platform::metrics::registered;
use prometheus::{
    Histogram, HistogramVec, IntCounter, IntCounterVec, register_histogram_vec,
    register_int_counter_vec,
};

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

/// Most series [`HttpMetrics::record`] keeps handles to per thread; past it, a series is looked up
/// in its vector every time (the labels are bounded, so this is never reached in practice: routes ×
/// methods × statuses a service answers).
const KEPT_SERIES: usize = 128;

/// A series' labels, as [`HttpMetrics::record`] keys its handles: the `HttpMetrics` (by address),
/// service, method, route template and status.
#[derive(Debug)]
struct Labels {
    metrics: usize,
    service: &'static str,
    method: &'static str,
    route: Box<str>,
    status: StatusCode,
}

/// The handles of one series: its duration histogram and its request counter.
type Handles = (Histogram, IntCounter);

thread_local! {
    /// The handles [`HttpMetrics::record`] looked up on this thread.
    static SERIES: RefCell<Vec<(Labels, Handles)>> = const { RefCell::new(Vec::new()) };
}

impl HttpMetrics {
    /// Counts an answer of `service` in [`HttpMetrics::requests`] and [`HttpMetrics::duration`]
    /// (`elapsed` from the request to the answer's head), by method (see [`method_label`]), route
    /// template (the answer's [`MatchedPath`], which the router's layer around every route puts
    /// there; `unmatched` for requests no route matched) and status code: every label is bounded
    /// whatever the clients send.
    ///
    /// Each thread keeps the handles of the series it counted in (up to `KEPT_SERIES`, 128): looking
    /// a series up in its vector hashes its labels and takes a lock every thread shares, twice per
    /// request.
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
        let status = answer.status();
        let metrics = std::ptr::from_ref(self) as usize;
        let count = |(duration, requests): &Handles| {
            duration.observe(elapsed.as_secs_f64());
            requests.inc();
        };
        SERIES.with_borrow_mut(|series| {
            let kept = series.iter().find(|(labels, _)| {
                labels.metrics == metrics
                    && labels.status == status
                    && *labels.route == *route
                    && std::ptr::eq(labels.method, method)
                    && std::ptr::eq(labels.service, service)
            });
            if let Some((_, handles)) = kept {
                return count(handles);
            }
            let handles = (
                self.duration.with_label_values(&[service, method, route]),
                self.requests
                    .with_label_values(&[service, method, route, status.as_str()]),
            );
            count(&handles);
            if series.len() < KEPT_SERIES {
                let labels = Labels {
                    metrics,
                    service,
                    method,
                    route: route.into(),
                    status,
                };
                series.push((labels, handles));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The template axum matches `route` under, as its router hands it to a handler.
    async fn matched(route: &'static str) -> MatchedPath {
        use tower::ServiceExt;
        let router = axum::Router::new().route(
            route,
            axum::routing::get(|path: MatchedPath| async move {
                let mut answer = Response::new(axum::body::Body::empty());
                answer.extensions_mut().insert(path);
                answer
            }),
        );
        let request = http::Request::get(route.replace("{id}", "1"))
            .body(axum::body::Body::empty())
            .expect("request");
        let answer = router.oneshot(request).await.expect("answer");
        answer
            .extensions()
            .get::<MatchedPath>()
            .cloned()
            .expect("matched")
    }

    fn answer(route: Option<&MatchedPath>, status: StatusCode) -> Response {
        let mut answer = Response::new(axum::body::Body::empty());
        *answer.status_mut() = status;
        if let Some(route) = route {
            answer.extensions_mut().insert(route.clone());
        }
        answer
    }

    #[tokio::test]
    async fn every_answer_is_counted_in_its_own_series_on_every_thread() {
        let metrics = HttpMetrics::registered();
        let service = "metrics-test";
        let count = |route: &str, status: &str| {
            metrics
                .requests
                .with_label_values(&[service, "GET", route, status])
                .get()
        };
        let duration = |route: &str| {
            metrics
                .duration
                .with_label_values(&[service, "GET", route])
                .get_sample_count()
        };
        let (list, one) = (matched("/events").await, matched("/events/{id}").await);
        let answers = [
            (Some(list.clone()), StatusCode::OK),
            (Some(list), StatusCode::NOT_MODIFIED),
            (Some(one), StatusCode::OK),
            (None, StatusCode::NOT_FOUND),
        ];
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let answers = answers.clone();
                std::thread::spawn(move || {
                    for _ in 0..3 {
                        for (route, status) in &answers {
                            metrics.record(
                                service,
                                "GET",
                                &answer(route.as_ref(), *status),
                                Duration::from_millis(1),
                            );
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        assert_eq!(count("/events", "200"), 6);
        assert_eq!(count("/events", "304"), 6);
        assert_eq!(count("/events/{id}", "200"), 6);
        assert_eq!(count("unmatched", "404"), 6);
        assert_eq!(count("/events/{id}", "304"), 0);
        assert_eq!(duration("/events"), 12);
        assert_eq!(duration("unmatched"), 6);
    }
}
