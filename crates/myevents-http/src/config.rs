//! How a service's HTTP server runs (limits, metrics port, shutdown) and which origins may call it.

use std::net::SocketAddr;
use std::time::Duration;

use myevents_platform::config::{ConfigError, listen_addr_or, parse_or, seconds_or, var};

use crate::rate_limit::RateLimit;

/// How a service's HTTP server runs: limits, the metrics port and shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes (`HTTP_BODY_LIMIT`, default 65536); larger: 413.
    pub body_limit: usize,
    /// Longest a request may take (`HTTP_REQUEST_TIMEOUT`, seconds, default 30); then 503.
    pub request_timeout: Duration,
    /// Requests handled at once (`HTTP_MAX_CONCURRENT_REQUESTS`, default 1024); beyond: 503 with
    /// `Retry-After` at once, never an unbounded queue.
    pub max_concurrent_requests: usize,
    /// Where `/metrics` is served (`METRICS_LISTEN_URL`; `off` disables it).
    pub metrics_listen: Option<SocketAddr>,
    /// After SIGTERM, how long readiness says 503 while requests are still accepted, so that load
    /// balancers stop sending new ones (`SHUTDOWN_DELAY`, seconds, default 0; 5 behind Kubernetes).
    pub shutdown_delay: Duration,
    /// Bound on the whole shutdown after SIGTERM (`SHUTDOWN_TIMEOUT`, seconds, default 25; keep it
    /// below Kubernetes' `terminationGracePeriodSeconds`, default 30): `SHUTDOWN_DELAY` and the
    /// requests in flight get the first two thirds ([`ServerConfig::request_drain_bound`]), the
    /// message in hand, the outbox drain and the publisher's flush the rest.
    pub shutdown_timeout: Duration,
    /// Longest wait for a request's headers, counted from when the connection is ready for its next
    /// request (`HTTP_HEADER_READ_TIMEOUT`, seconds, default 10): a client that sends its headers
    /// slowly, or keeps an idle keep-alive connection open, is disconnected after it.
    pub header_read_timeout: Duration,
    /// Longest wait for a request's whole body once its headers arrived (`HTTP_BODY_READ_TIMEOUT`,
    /// seconds, default 10); then 408. The body is read before the request takes one of
    /// `max_concurrent_requests`, so slow uploads hold no request slot.
    pub body_read_timeout: Duration,
    /// Connections held open at once (`HTTP_MAX_CONNECTIONS`, default 10000); further ones wait in
    /// the listen backlog until one closes.
    pub max_connections: usize,
    /// API requests per caller (`RATE_LIMIT_PER_SECOND`, default 100, `off` for none;
    /// `RATE_LIMIT_BURST`, default twice that; `TRUSTED_PROXY_HOPS`, default 0; see
    /// [`crate::rate_limit`]). `None` in [`ServerConfig::with_metrics`] and for tests.
    pub rate_limit: Option<RateLimit>,
}

/// `RATE_LIMIT_PER_SECOND` when unset.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 100;

impl ServerConfig {
    /// Defaults with the metrics server on `metrics_listen`.
    pub fn with_metrics(metrics_listen: Option<SocketAddr>) -> Self {
        Self {
            body_limit: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 1024,
            metrics_listen,
            shutdown_delay: Duration::ZERO,
            shutdown_timeout: Duration::from_secs(25),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            max_connections: 10_000,
            rate_limit: None,
        }
    }

    /// How long after SIGTERM requests may still be served and finished: two thirds of
    /// [`ServerConfig::shutdown_timeout`] (`SHUTDOWN_DELAY` included); the last third is left to the
    /// messaging.
    pub fn request_drain_bound(&self) -> Duration {
        self.shutdown_timeout - self.shutdown_timeout / 3
    }

    /// For tests: defaults, metrics on a free local port.
    pub fn ephemeral() -> Self {
        Self::with_metrics(Some(SocketAddr::from(([127, 0, 0, 1], 0))))
    }

    /// Reads the variables above; `default_metrics` is the service's metrics address.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_env(default_metrics: &str) -> Result<Self, ConfigError> {
        let defaults = Self::with_metrics(None);
        let metrics_listen = match var("METRICS_LISTEN_URL").as_deref() {
            Some("off") => None,
            _ => Some(listen_addr_or("METRICS_LISTEN_URL", default_metrics)?),
        };
        let body_limit = parse_or("HTTP_BODY_LIMIT", defaults.body_limit)?;
        let max_concurrent_requests = parse_or(
            "HTTP_MAX_CONCURRENT_REQUESTS",
            defaults.max_concurrent_requests,
        )?;
        let max_connections = parse_or("HTTP_MAX_CONNECTIONS", defaults.max_connections)?;
        for (name, value) in [
            ("HTTP_BODY_LIMIT", body_limit),
            ("HTTP_MAX_CONCURRENT_REQUESTS", max_concurrent_requests),
            ("HTTP_MAX_CONNECTIONS", max_connections),
        ] {
            if value == 0 {
                return Err(ConfigError::new(name, "0", "must be at least 1"));
            }
        }
        let request_timeout = seconds_or("HTTP_REQUEST_TIMEOUT", defaults.request_timeout)?;
        let header_read_timeout =
            seconds_or("HTTP_HEADER_READ_TIMEOUT", defaults.header_read_timeout)?;
        let body_read_timeout = seconds_or("HTTP_BODY_READ_TIMEOUT", defaults.body_read_timeout)?;
        for (name, value) in [
            ("HTTP_REQUEST_TIMEOUT", request_timeout),
            ("HTTP_HEADER_READ_TIMEOUT", header_read_timeout),
            ("HTTP_BODY_READ_TIMEOUT", body_read_timeout),
        ] {
            if value.is_zero() {
                return Err(ConfigError::new(name, "0", "must be at least 1 second"));
            }
        }
        let rate_limit = match var("RATE_LIMIT_PER_SECOND").as_deref() {
            Some("off") => None,
            _ => {
                let per_second: u32 =
                    parse_or("RATE_LIMIT_PER_SECOND", DEFAULT_RATE_LIMIT_PER_SECOND)?;
                let burst: u32 = parse_or("RATE_LIMIT_BURST", per_second.saturating_mul(2))?;
                let nonzero = |name: &str, value: u32| {
                    std::num::NonZeroU32::new(value)
                        .ok_or_else(|| ConfigError::new(name, "0", "must be at least 1 (or off)"))
                };
                Some(RateLimit {
                    per_second: nonzero("RATE_LIMIT_PER_SECOND", per_second)?,
                    burst: nonzero("RATE_LIMIT_BURST", burst.max(per_second))?,
                    trusted_proxy_hops: parse_or("TRUSTED_PROXY_HOPS", 0usize)?,
                })
            }
        };
        Ok(Self {
            rate_limit,
            body_limit,
            request_timeout,
            max_concurrent_requests,
            metrics_listen,
            shutdown_delay: seconds_or("SHUTDOWN_DELAY", defaults.shutdown_delay)?,
            shutdown_timeout: seconds_or("SHUTDOWN_TIMEOUT", defaults.shutdown_timeout)?,
            header_read_timeout,
            body_read_timeout,
            max_connections,
        })
    }
}

/// Which origins may call the APIs from a browser (CORS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin: `Access-Control-Allow-Origin: *` (the reference's behaviour).
    Any,
    /// Only these origins (`scheme://host[:port]`).
    List(Vec<String>),
}

impl CorsOrigins {
    /// Reads `CORS_ALLOWED_ORIGINS`: `*` or a comma-separated list of origins; `default` when unset.
    ///
    /// # Errors
    /// [`ConfigError`] for an entry that is not `http(s)://host[:port]`.
    pub fn from_env(default: Self) -> Result<Self, ConfigError> {
        const NAME: &str = "CORS_ALLOWED_ORIGINS";
        let Some(value) = var(NAME) else {
            return Ok(default);
        };
        if value.trim() == "*" {
            return Ok(Self::Any);
        }
        let origins: Vec<String> = value
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        for origin in &origins {
            let valid = (origin.starts_with("http://") || origin.starts_with("https://"))
                && !origin.split("://").nth(1).unwrap_or_default().contains('/')
                && http::HeaderValue::from_str(origin).is_ok();
            if !valid {
                return Err(ConfigError::new(
                    NAME,
                    &value,
                    format!("{origin:?} is not an origin like http://localhost:3000 (or use *)"),
                ));
            }
        }
        Ok(Self::List(origins))
    }
}
