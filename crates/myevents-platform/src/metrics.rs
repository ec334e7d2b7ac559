//! Prometheus metrics (the `prometheus` crate, default registry) and the server that exposes them on
//! their own port (`METRICS_LISTEN_URL`: event service `0.0.0.0:9100`, booking service `0.0.0.0:9101`,
//! as the reference; embedded mode `127.0.0.1:9100`), at `GET /metrics` in the text exposition format.
//!
//! The series live beside what they measure: HTTP in `myevents_http::metrics`, the outbox relay and
//! the consumer in `myevents_messaging::metrics`, message handling in `myevents_broker::metrics`, the
//! bookings in the booking service. Series that both services write carry a `service` label, so
//! that the embedded mode (both services, one registry) reports each service apart. Labels are
//! bounded: route templates such as `/events/{id}`, never a raw path or an id. Process metrics
//! (`process_resident_memory_bytes`, `process_cpu_seconds_total`, `process_open_fds`, …) come with the
//! registry on Linux.

use std::net::SocketAddr;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{StatusCode, header};
use prometheus::{Encoder, TextEncoder};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Unwraps the registration of a series: registering one name twice is a programming error, found
/// by the first test that renders the metrics.
///
/// # Panics
/// When `metric` failed to register.
pub fn registered<T>(name: &str, metric: prometheus::Result<T>) -> T {
    metric.unwrap_or_else(|e| panic!("registering {name}: {e}"))
}

/// Every metric of the process in the Prometheus text format (version 0.0.4).
pub fn render() -> String {
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
