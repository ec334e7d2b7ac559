//! Typed configuration from environment variables (12-factor). Every reader names the variable in its
//! error, and [`redact_url`] keeps credentials out of logs.

use std::fmt::Display;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

pub use myevents_store::config::MongoConfig;

/// A variable was set to a value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("environment variable {variable}={value:?} is invalid: {reason}")]
pub struct ConfigError {
    /// The variable's name.
    pub variable: String,
    /// The value found (credentials redacted).
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ConfigError {
    /// An error for `variable`.
    pub fn new(variable: &str, value: &str, reason: impl Into<String>) -> Self {
        Self {
            variable: variable.to_owned(),
            value: redact_url(value),
            reason: reason.into(),
        }
    }
}

/// The variable's value, `None` when unset or empty.
pub fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Parses a variable, or gives `default` when it is unset.
///
/// # Errors
/// [`ConfigError`] naming the variable when its value does not parse.
pub fn parse_or<T>(name: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match var(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse()
            .map_err(|e: T::Err| ConfigError::new(name, &value, e.to_string())),
    }
}

/// A duration in whole seconds, or `default`.
///
/// # Errors
/// [`ConfigError`] when the value is not a non-negative number of seconds.
pub fn seconds_or(name: &str, default: Duration) -> Result<Duration, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| ConfigError::new(name, &value, "expected a number of seconds, e.g. 10")),
    }
}

/// Reads an on/off switch (`on|true|1|yes` or `off|false|0|no`), or `default`.
///
/// # Errors
/// [`ConfigError`] naming the variable for any other value.
pub fn switch_or(name: &str, default: bool) -> Result<bool, ConfigError> {
    match var(name) {
        None => Ok(default),
        Some(value) => match value.trim().to_ascii_lowercase().as_str() {
            "on" | "true" | "1" | "yes" => Ok(true),
            "off" | "false" | "0" | "no" => Ok(false),
            _ => Err(ConfigError::new(name, &value, "expected on or off")),
        },
    }
}

/// The outbox relay's settings: `OUTBOX_RELAY` (`on`/`off`, default `on`; `off` only to simulate a
/// crash between storing and publishing, in tests) and `OUTBOX_POLL_INTERVAL` (seconds between looks
/// for messages a crashed process left behind, default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Whether the relay runs.
    pub enabled: bool,
    /// Time between two looks when nothing woke it.
    pub poll_interval: Duration,
}

impl RelayConfig {
    /// Reads `OUTBOX_RELAY` and `OUTBOX_POLL_INTERVAL`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            enabled: switch_or("OUTBOX_RELAY", true)?,
            poll_interval: seconds_or("OUTBOX_POLL_INTERVAL", Duration::from_secs(1))?,
        })
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval: Duration::from_secs(1),
        }
    }
}

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
    /// Bound on the whole shutdown after SIGTERM: requests in flight, messages in hand, the outbox
    /// drain (`SHUTDOWN_TIMEOUT`, seconds, default 25).
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
}

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
        }
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
        Ok(Self {
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

/// Parses a listen address: `host:port`, or Go's `:port` meaning every interface (the reference's
/// `LISTEN_URL` form, e.g. `:8181`).
///
/// # Errors
/// A message saying what form is expected.
pub fn parse_listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let text = text
        .strip_prefix("http://")
        .unwrap_or(text)
        .trim_end_matches('/');
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_owned()
    };
    full.parse::<SocketAddr>()
        .or_else(|_| {
            std::net::ToSocketAddrs::to_socket_addrs(full.as_str())
                .map_err(|e| e.to_string())?
                .next()
                .ok_or_else(|| "no address".to_owned())
        })
        .map_err(|_| "expected host:port (e.g. 0.0.0.0:8181) or :port".to_owned())
}

/// Reads a listen address variable, or `default`.
///
/// # Errors
/// [`ConfigError`] naming the variable.
pub fn listen_addr_or(name: &str, default: &str) -> Result<SocketAddr, ConfigError> {
    let value = var(name).unwrap_or_else(|| default.to_owned());
    parse_listen_addr(&value).map_err(|reason| ConfigError::new(name, &value, reason))
}

/// Replaces the password of a URL (`scheme://user:password@host`) with `***`.
pub fn redact_url(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_owned();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match (authority.rfind('@'), authority.find(':')) {
        (Some(at), Some(colon)) if colon < at => format!(
            "{}{}:***{}",
            &text[..scheme_end + 3],
            &authority[..colon],
            &rest[at..]
        ),
        _ => text.to_owned(),
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

/// Which broker to use and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerConfig {
    /// The in-process broker (only useful when both services share one process).
    Memory,
    /// RabbitMQ.
    RabbitMq {
        /// AMQP URI (`AMQP_BROKER_URL`).
        url: String,
        /// The topic exchange (`AMQP_EXCHANGE`, default `events`).
        exchange: String,
        /// Delete idle queues after this long (`AMQP_QUEUE_EXPIRES`, seconds; unset: never).
        queue_expires: Option<Duration>,
    },
    /// Kafka.
    Kafka {
        /// Bootstrap servers (`KAFKA_BROKER_URLS`, comma-separated).
        brokers: Vec<String>,
        /// The topic (`KAFKA_TOPIC`, default `events`); dead letters go to `<topic>.dlq`.
        topic: String,
        /// Partitions of topics the service creates (`KAFKA_PARTITIONS`, default 3).
        partitions: i32,
    },
}

impl BrokerConfig {
    /// Reads `BROKER_KIND` (`memory` | `rabbitmq` | `kafka`, default `default_kind`), then the kind's
    /// variables: `AMQP_BROKER_URL` (default `amqp://guest:guest@localhost:5672/%2f`), `AMQP_EXCHANGE`
    /// (default `events`) and `AMQP_QUEUE_EXPIRES` (seconds, unset by default); or `KAFKA_BROKER_URLS`
    /// (default `localhost:9092`), `KAFKA_TOPIC` (default `events`) and `KAFKA_PARTITIONS` (default 3).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable for an unknown kind or a malformed URL.
    pub fn from_env(default_kind: &str) -> Result<Self, ConfigError> {
        let kind = var("BROKER_KIND").unwrap_or_else(|| default_kind.to_owned());
        match kind.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(Self::Memory),
            "rabbitmq" | "amqp" => {
                let url = var("AMQP_BROKER_URL")
                    .unwrap_or_else(|| "amqp://guest:guest@localhost:5672/%2f".to_owned());
                if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
                    return Err(ConfigError::new(
                        "AMQP_BROKER_URL",
                        &url,
                        "expected amqp://user:password@host:port/vhost",
                    ));
                }
                let exchange = var("AMQP_EXCHANGE").unwrap_or_else(|| "events".to_owned());
                let queue_expires = match var("AMQP_QUEUE_EXPIRES") {
                    None => None,
                    Some(_) => Some(seconds_or("AMQP_QUEUE_EXPIRES", Duration::ZERO)?),
                };
                Ok(Self::RabbitMq {
                    url,
                    exchange,
                    queue_expires,
                })
            }
            "kafka" => {
                let brokers: Vec<String> = var("KAFKA_BROKER_URLS")
                    .unwrap_or_else(|| "localhost:9092".to_owned())
                    .split(',')
                    .map(|b| b.trim().to_owned())
                    .filter(|b| !b.is_empty())
                    .collect();
                let topic = var("KAFKA_TOPIC").unwrap_or_else(|| "events".to_owned());
                let partitions = parse_or("KAFKA_PARTITIONS", 3i32)?;
                if partitions < 1 {
                    return Err(ConfigError::new(
                        "KAFKA_PARTITIONS",
                        &partitions.to_string(),
                        "must be at least 1",
                    ));
                }
                Ok(Self::Kafka {
                    brokers,
                    topic,
                    partitions,
                })
            }
            _ => Err(ConfigError::new(
                "BROKER_KIND",
                &kind,
                "expected memory, rabbitmq or kafka",
            )),
        }
    }
}

/// Which store to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In process memory: nothing survives a restart.
    Memory,
    /// MongoDB.
    MongoDb(MongoConfig),
}

impl StoreConfig {
    /// Reads `STORE_KIND` (`memory` | `mongodb`, default `default_kind`), then for MongoDB:
    /// `MONGO_URL` (default `mongodb://127.0.0.1:27017`), `MONGO_DATABASE` (default
    /// `default_database`), `MONGO_MAX_POOL_SIZE` (connections, default 20), `MONGO_CONNECT_TIMEOUT`
    /// and `MONGO_SERVER_SELECTION_TIMEOUT` (seconds, default 5 each) and `MONGO_RETRY_WRITES`
    /// (`true`/`false`, default `true`).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_env(default_kind: &str, default_database: &str) -> Result<Self, ConfigError> {
        let kind = var("STORE_KIND").unwrap_or_else(|| default_kind.to_owned());
        match kind.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(Self::Memory),
            "mongodb" | "mongo" => {
                let url =
                    var("MONGO_URL").unwrap_or_else(|| "mongodb://127.0.0.1:27017".to_owned());
                if !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
                    return Err(ConfigError::new(
                        "MONGO_URL",
                        &url,
                        "expected mongodb://host:port or mongodb+srv://host",
                    ));
                }
                let database = var("MONGO_DATABASE").unwrap_or_else(|| default_database.to_owned());
                if database.is_empty()
                    || database.len() > 63
                    || database.contains(['/', '\\', '.', ' ', '"', '$'])
                {
                    return Err(ConfigError::new(
                        "MONGO_DATABASE",
                        &database,
                        "a database name has 1-63 characters and none of /\\. \"$ or space",
                    ));
                }
                let mut mongo = MongoConfig::new(url, database);
                mongo.max_pool_size = parse_or("MONGO_MAX_POOL_SIZE", mongo.max_pool_size)?;
                mongo.connect_timeout = seconds_or("MONGO_CONNECT_TIMEOUT", mongo.connect_timeout)?;
                mongo.server_selection_timeout = seconds_or(
                    "MONGO_SERVER_SELECTION_TIMEOUT",
                    mongo.server_selection_timeout,
                )?;
                mongo.retry_writes = parse_or("MONGO_RETRY_WRITES", mongo.retry_writes)?;
                Ok(Self::MongoDb(mongo))
            }
            _ => Err(ConfigError::new(
                "STORE_KIND",
                &kind,
                "expected memory or mongodb",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses_take_go_style_port_only_forms() {
        assert_eq!(
            parse_listen_addr(":8181"),
            Ok("0.0.0.0:8181".parse().expect("addr"))
        );
        assert_eq!(
            parse_listen_addr("127.0.0.1:0"),
            Ok("127.0.0.1:0".parse().expect("addr"))
        );
        assert!(parse_listen_addr("nonsense").is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("amqp://guest:secret@rabbit:5672/%2f"),
            "amqp://guest:***@rabbit:5672/%2f"
        );
        assert_eq!(redact_url("amqp://rabbit:5672"), "amqp://rabbit:5672");
        assert_eq!(
            ConfigError::new("X", "mongodb://u:p@h", "bad").value,
            "mongodb://u:***@h"
        );
    }
}
