//! What the host reads for every service ([`HostConfig`], with a service's [`HostDefaults`]), and a
//! service's configuration as the host hands it over ([`Config`]: the host's part and the
//! service's own, [`FromEnv`]).

use std::net::SocketAddr;
use std::time::Duration;

use myevents_http::auth::{AuthConfig, AuthMode};
use myevents_http::config::{CorsOrigins, ServerConfig};
use myevents_http::idempotency::IdempotencyConfig;
use myevents_http::tls::TlsFiles;
use myevents_messaging::config::RelayConfig;
use myevents_platform::config::{ConfigError, listen_addr_or, seconds_or, var};

/// The defaults that tell one service's environment from another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDefaults {
    /// `LISTEN_URL` when unset (`0.0.0.0:8181`, `0.0.0.0:8282`).
    pub listen: &'static str,
    /// `METRICS_LISTEN_URL` when unset (`127.0.0.1:9100`, `127.0.0.1:9101`: loopback only, so that
    /// a deployment exposes metrics to its scraper on purpose).
    pub metrics: &'static str,
    /// The variable naming the service's queue (or consumer group), e.g. `BOOKING_QUEUE`.
    pub queue_variable: &'static str,
    /// The queue when that variable is unset (the reference's: `events-service`, `booking`).
    pub queue: &'static str,
    /// `MONGO_DATABASE` when unset (`myevents`, `myevents_booking`).
    pub database: &'static str,
}

/// What the host reads for every service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// HTTP listen address (`LISTEN_URL`; `:8181` accepted; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Origins allowed by CORS (`CORS_ALLOWED_ORIGINS`, default `*`).
    pub cors: CorsOrigins,
    /// Limits, metrics port (`METRICS_LISTEN_URL`) and shutdown.
    pub server: ServerConfig,
    /// The outbox relay (`OUTBOX_RELAY`, `OUTBOX_POLL_INTERVAL`).
    pub relay: RelayConfig,
    /// The subscription (AMQP queue / Kafka consumer group) the service consumes.
    pub queue: String,
    /// How long idempotency keys are kept and held (`IDEMPOTENCY_KEY_TTL`, `IDEMPOTENCY_LEASE`).
    pub idempotency: IdempotencyConfig,
    /// How long the consume loop may keep failing before `/healthz` answers 503
    /// (`CONSUMER_FAILING_LIMIT`, seconds, default 120; see `ConsumerStatus::failing_for`).
    pub consumer_failing_limit: Duration,
    /// How callers are authenticated (`AUTH_MODE`, default `jwt` for the service binaries; see
    /// `myevents_http::auth::AuthConfig::from_env`).
    pub auth: AuthConfig,
    /// HTTPS on the listener (`TLS_CERT_FILE`, `TLS_KEY_FILE`); `None` for plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// `CONSUMER_FAILING_LIMIT` when unset.
pub const DEFAULT_CONSUMER_FAILING_LIMIT: Duration = Duration::from_secs(120);

impl HostConfig {
    /// Reads the variables above, with a service's `defaults`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env(defaults: &HostDefaults) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: listen_addr_or("LISTEN_URL", defaults.listen)?,
            cors: CorsOrigins::from_env(CorsOrigins::Any)?,
            server: ServerConfig::from_env(defaults.metrics)?,
            relay: RelayConfig::from_env()?,
            queue: var(defaults.queue_variable).unwrap_or_else(|| defaults.queue.to_owned()),
            idempotency: IdempotencyConfig::from_env()?,
            consumer_failing_limit: seconds_or(
                "CONSUMER_FAILING_LIMIT",
                DEFAULT_CONSUMER_FAILING_LIMIT,
            )?,
            auth: AuthConfig::from_env(AuthMode::Jwt)?,
            tls: TlsFiles::from_env()?,
        })
    }

    /// For tests: every default, listening on free ports of 127.0.0.1, consuming `queue`, with
    /// authentication off.
    pub fn ephemeral(queue: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cors: CorsOrigins::Any,
            server: ServerConfig::ephemeral(),
            relay: RelayConfig::default(),
            queue: queue.into(),
            idempotency: IdempotencyConfig::default(),
            consumer_failing_limit: DEFAULT_CONSUMER_FAILING_LIMIT,
            auth: AuthConfig::Off,
            tls: None,
        }
    }
}

/// A service's own settings, read from the environment at start-up (the host reads its part,
/// [`HostConfig`], itself).
pub trait FromEnv: Sized {
    /// Reads and validates the service's own variables.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    fn from_env() -> Result<Self, ConfigError>;
}

/// A service with no settings of its own.
impl FromEnv for () {
    fn from_env() -> Result<Self, ConfigError> {
        Ok(())
    }
}

/// Everything a service runs with: what the host reads for every service, and the service's own
/// settings (`C`, its `Service::Config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config<C> {
    /// Listener, CORS, limits, relay, queue, idempotency keys, authentication, TLS.
    pub host: HostConfig,
    /// The service's own settings.
    pub service: C,
}

impl<C: FromEnv> Config<C> {
    /// Reads the host's variables with a service's `defaults`, then the service's own.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env(defaults: &HostDefaults) -> Result<Self, ConfigError> {
        Ok(Self {
            host: HostConfig::from_env(defaults)?,
            service: C::from_env()?,
        })
    }
}
