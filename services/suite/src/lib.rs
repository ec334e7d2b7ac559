//! # myevents (embedded mode)
//!
//! The whole MyEvents suite in one process: the event service and the booking service, exchanging
//! domain events over the in-process broker, with in-memory stores. No server to install: this is what
//! `cargo run --release` starts at the repository root. Data lives as long as the process.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let suite = myevents::Suite::build(&myevents::SuiteConfig::from_env()?).await?;
//! println!("events on {}, bookings on {}", suite.event_addr(), suite.booking_addr());
//! suite.run_until_stopped(myevents_platform::shutdown::signal()).await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use myevents_booking_service::config::BookingServiceConfig;
use myevents_broker::memory::InMemoryBroker;
use myevents_host::HostConfig;
use myevents_http::auth::{AuthConfig, AuthMode};
use myevents_http::config::{CorsOrigins, ServerConfig};
use myevents_http::idempotency::IdempotencyConfig;
use myevents_messaging::broker::Broker;
use myevents_messaging::config::RelayConfig;
use myevents_platform::config::{ConfigError, listen_addr_or, parse_or};
use tokio_util::sync::CancellationToken;

/// The embedded suite's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuiteConfig {
    /// Event service address (`EVENT_LISTEN_URL`, default `127.0.0.1:8181`).
    pub event_listen: SocketAddr,
    /// Booking service address (`BOOKING_LISTEN_URL`, default `127.0.0.1:8282`).
    pub booking_listen: SocketAddr,
    /// CORS origins of both services (`CORS_ALLOWED_ORIGINS`, default `*`).
    pub cors: CorsOrigins,
    /// Most seats in one booking (`MAX_SEATS_PER_BOOKING`, default 10).
    pub max_seats_per_booking: u32,
    /// How long idempotency keys are kept and held (`IDEMPOTENCY_KEY_TTL`, `IDEMPOTENCY_LEASE`).
    pub idempotency: IdempotencyConfig,
    /// Limits, shutdown and the one metrics server of both services (`METRICS_LISTEN_URL`, default
    /// `127.0.0.1:9100`; one process, one registry, the series told apart by their `service` label).
    pub server: ServerConfig,
    /// How both services authenticate callers (`AUTH_MODE`, default `off` here, so that the book's
    /// frontend, which sends no token, works against `cargo run`).
    pub auth: AuthConfig,
}

impl SuiteConfig {
    /// Reads the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            event_listen: listen_addr_or("EVENT_LISTEN_URL", "127.0.0.1:8181")?,
            booking_listen: listen_addr_or("BOOKING_LISTEN_URL", "127.0.0.1:8282")?,
            cors: CorsOrigins::from_env(CorsOrigins::Any)?,
            max_seats_per_booking: parse_or("MAX_SEATS_PER_BOOKING", 10u32)?,
            idempotency: IdempotencyConfig::from_env()?,
            server: ServerConfig::from_env("127.0.0.1:9100")?,
            auth: AuthConfig::from_env(AuthMode::Off)?,
        })
    }

    /// Both services on free ports of 127.0.0.1 (for tests).
    pub fn ephemeral() -> Self {
        let any = SocketAddr::from(([127, 0, 0, 1], 0));
        Self {
            event_listen: any,
            booking_listen: any,
            cors: CorsOrigins::Any,
            max_seats_per_booking: 10,
            idempotency: IdempotencyConfig::default(),
            server: ServerConfig::ephemeral(),
            auth: AuthConfig::Off,
        }
    }
}

/// Both services, bound and wired to one in-process broker.
pub struct Suite {
    events: myevents_event_service::Application,
    bookings: myevents_booking_service::Application,
}

impl Suite {
    /// Binds both listeners and starts the booking service's consumer.
    ///
    /// # Errors
    /// When an address cannot be bound.
    pub async fn build(config: &SuiteConfig) -> anyhow::Result<Self> {
        let broker = InMemoryBroker::default();
        let host = |listen, queue: &str, server| HostConfig {
            listen,
            cors: config.cors.clone(),
            server,
            relay: RelayConfig::default(),
            queue: queue.to_owned(),
            idempotency: config.idempotency,
            consumer_failing_limit: myevents_host::DEFAULT_CONSUMER_FAILING_LIMIT,
            auth: config.auth.clone(),
            tls: None,
        };
        let event_config = myevents_host::Config {
            host: host(config.event_listen, "events-service", config.server),
            service: myevents_event_service::config::EventServiceConfig::default(),
        };
        let booking_server = ServerConfig {
            metrics_listen: None,
            ..config.server
        };
        let booking_config = myevents_host::Config {
            host: host(config.booking_listen, "booking", booking_server),
            service: BookingServiceConfig {
                max_seats_per_booking: config.max_seats_per_booking,
                ..BookingServiceConfig::default()
            },
        };
        let bookings = myevents_booking_service::Application::build(
            &booking_config,
            myevents_booking_service::Dependencies::in_memory(Broker::in_memory(&broker)),
        )
        .await
        .context("starting the booking service (BOOKING_LISTEN_URL)")?;
        let events = myevents_event_service::Application::build(
            &event_config,
            myevents_event_service::Dependencies::in_memory(Broker::in_memory(&broker)),
        )
        .await
        .context("starting the event service (EVENT_LISTEN_URL, METRICS_LISTEN_URL)")?;
        Ok(Self { events, bookings })
    }

    /// The event service's address.
    pub fn event_addr(&self) -> SocketAddr {
        self.events.local_addr()
    }

    /// The booking service's address.
    pub fn booking_addr(&self) -> SocketAddr {
        self.bookings.local_addr()
    }

    /// The address of the metrics server both services share, if it runs.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.events.metrics_addr()
    }

    /// Serves both until `shutdown` resolves, then stops both gracefully.
    ///
    /// # Errors
    /// Either server's I/O error.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });
        let (events, bookings) = tokio::join!(
            self.events
                .run_until_stopped(stop.clone().cancelled_owned()),
            self.bookings.run_until_stopped(stop.cancelled_owned()),
        );
        events.and(bookings)
    }
}
