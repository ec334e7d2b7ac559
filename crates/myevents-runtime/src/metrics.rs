//! Prometheus metrics (the `prometheus` crate, default registry) and the server that exposes them on
//! their own port (`METRICS_LISTEN_URL`: event service `0.0.0.0:9100`, booking service `0.0.0.0:9101`,
//! as the reference; embedded mode `127.0.0.1:9100`), at `GET /metrics` in the text exposition format.
//!
//! Series (labels are bounded: route templates such as `/events/{id}`, never a raw path or an id):
//! - `myevents_http_requests_total{method, route, status}` and
//!   `myevents_http_request_duration_seconds{method, route}` (histogram, seconds);
//! - `myevents_messages_published_total{event_name}`, `myevents_messages_publish_failures_total`,
//!   `myevents_outbox_pending` (messages) and `myevents_outbox_oldest_pending_age_seconds` (this module);
//! - `myevents_messages_consumed_total`, `_failed_total`, `_dead_lettered_total{event_name}` and
//!   `myevents_message_handling_seconds` ([`myevents_broker::metrics`]);
//! - the booking service's `myevents_bookings_count`, `myevents_seats_per_booking` and
//!   `myevents_sold_out_rejections_total`;
//! - `myevents_consumer_attached` (1 or 0);
//! - process metrics: `process_resident_memory_bytes`, `process_cpu_seconds_total`,
//!   `process_open_fds`, … (Linux).

use std::net::SocketAddr;
use std::sync::LazyLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use prometheus::{
    Encoder, HistogramVec, IntCounter, IntCounterVec, IntGauge, TextEncoder,
    register_histogram_vec, register_int_counter, register_int_counter_vec, register_int_gauge,
};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn registered<T>(name: &str, metric: prometheus::Result<T>) -> T {
    metric.unwrap_or_else(|e| panic!("registering {name}: {e}"))
}

/// HTTP requests answered, by method, route template and status.
pub static HTTP_REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(
        "myevents_http_requests_total",
        register_int_counter_vec!(
            "myevents_http_requests_total",
            "HTTP requests answered, by method, route template and status code.",
            &["method", "route", "status"]
        ),
    )
});

/// HTTP request latency in seconds, by method and route template.
pub static HTTP_DURATION: LazyLock<HistogramVec> = LazyLock::new(|| {
    registered(
        "myevents_http_request_duration_seconds",
        register_histogram_vec!(
            "myevents_http_request_duration_seconds",
            "Time to answer an HTTP request, in seconds, by method and route template.",
            &["method", "route"],
            vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
            ]
        ),
    )
});

/// Messages the outbox relay published (confirmed by the broker), by event name.
pub static PUBLISHED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    registered(
        "myevents_messages_published_total",
        register_int_counter_vec!(
            "myevents_messages_published_total",
            "Messages published from the outbox and confirmed by the broker, by event name.",
            &["event_name"]
        ),
    )
});

/// Relay rounds that failed (broker or store unavailable); the messages stay pending.
pub static PUBLISH_FAILURES: LazyLock<IntCounter> = LazyLock::new(|| {
    registered(
        "myevents_messages_publish_failures_total",
        register_int_counter!(
            "myevents_messages_publish_failures_total",
            "Outbox relay rounds that failed to publish; their messages stay pending."
        ),
    )
});

/// Messages waiting in the outbox (as of the relay's last look; counted up to 100).
pub static OUTBOX_PENDING: LazyLock<IntGauge> = LazyLock::new(|| {
    registered(
        "myevents_outbox_pending",
        register_int_gauge!(
            "myevents_outbox_pending",
            "Messages waiting in the outbox to be published (up to 100 counted)."
        ),
    )
});

/// Age of the oldest message waiting in the outbox, in seconds (0 when none).
pub static OUTBOX_OLDEST_AGE: LazyLock<IntGauge> = LazyLock::new(|| {
    registered(
        "myevents_outbox_oldest_pending_age_seconds",
        register_int_gauge!(
            "myevents_outbox_oldest_pending_age_seconds",
            "Age of the oldest message waiting in the outbox, in seconds (0 when none)."
        ),
    )
});

/// Whether the service's consumer is attached to its broker (1) or not (0), sampled every second.
pub static CONSUMER_ATTACHED: LazyLock<IntGauge> = LazyLock::new(|| {
    registered(
        "myevents_consumer_attached",
        register_int_gauge!(
            "myevents_consumer_attached",
            "1 while the service's consumer is attached to the broker, else 0 (sampled every second)."
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

/// Axum middleware recording [`HTTP_REQUESTS`] and [`HTTP_DURATION`] by method (see
/// [`method_label`]), route template (`unmatched` for requests no route matched) and status code:
/// every label is bounded whatever the clients send.
pub async fn record_http(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().cloned();
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    HTTP_DURATION
        .with_label_values(&[method, route])
        .observe(started.elapsed().as_secs_f64());
    HTTP_REQUESTS
        .with_label_values(&[method, route, response.status().as_str()])
        .inc();
    response
}

/// Every metric of the process in the Prometheus text format (version 0.0.4).
pub fn render() -> String {
    // Touch the lazily registered series so they are listed from the start.
    LazyLock::force(&HTTP_REQUESTS);
    LazyLock::force(&HTTP_DURATION);
    LazyLock::force(&PUBLISHED);
    LazyLock::force(&PUBLISH_FAILURES);
    LazyLock::force(&OUTBOX_PENDING);
    LazyLock::force(&OUTBOX_OLDEST_AGE);
    LazyLock::force(&CONSUMER_ATTACHED);
    let families = prometheus::gather();
    let mut text = Vec::new();
    if let Err(error) = TextEncoder::new().encode(&families, &mut text) {
        tracing::error!(%error, "encoding metrics failed");
    }
    String::from_utf8_lossy(&text).into_owned()
}

async fn metrics() -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, TextEncoder::new().format_type())],
        render(),
    )
        .into_response()
}

/// The metrics endpoint on its own listener.
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` (port 0 picks a free port) and serves `GET /metrics` in the background.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn start(addr: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let router = Router::new().route("/metrics", get(metrics));
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
            if let Err(error) = served {
                tracing::error!(%error, "metrics server failed");
            }
        });
        tracing::info!(addr = %local_addr, "metrics listening");
        Ok(Self {
            local_addr,
            stop,
            task,
        })
    }

    /// Starts one on `addr` when configured (`METRICS_LISTEN_URL`), else none.
    ///
    /// # Errors
    /// When the address cannot be bound; the error names `METRICS_LISTEN_URL`.
    pub async fn start_if_configured(addr: Option<SocketAddr>) -> anyhow::Result<Option<Self>> {
        match addr {
            None => Ok(None),
            Some(addr) => Self::start(addr)
                .await
                .map(Some)
                .map_err(|e| anyhow::anyhow!("cannot listen on {addr} (METRICS_LISTEN_URL): {e}")),
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
