//! # myevents-runtime
//!
//! The glue both MyEvents services share, so that each service holds only its domain logic:
//!
//! - [`problem`]: RFC 9457 `application/problem+json` error bodies.
//! - [`json`]: request-body parsing with the reference's case-insensitive keys.
//! - [`config`]: typed environment variables with errors that name the variable; broker selection.
//! - [`broker`]: the one factory that turns a [`config::BrokerConfig`] into publisher and subscriber.
//! - [`cli`]: the services' command line (serve, `healthcheck`, `version`, `dead-letters replay`).
//! - [`build_info`]: version and git commit of the build (`GET /version`).
//! - [`dead_letters`]: replaying dead letters after a fix.
//! - [`http`]: the middleware stack (request id, tracing, CORS), `201 Created` answers, graceful serving.
//! - [`idempotency`]: the `Idempotency-Key` header: replayed responses, 409 in flight, 422 on reuse.
//! - [`paging`]: `limit`/`after` query parameters and `Link: rel="next"` headers of listings.
//! - [`metrics`]: Prometheus series and the `/metrics` server on its own port.
//! - [`messaging`]: a service's consumer, outbox relay and publisher, started and stopped together.
//! - [`outbox`]: the relay that publishes a store's pending outbox messages.
//! - [`telemetry`]: `tracing` set-up (JSON in containers, human-readable in a terminal).
//! - [`shutdown`]: a future that resolves on SIGTERM or ctrl-c.
//!
//! Features: `rabbitmq` compiles the RabbitMQ adapter into the factory.
//!
//! ```no_run
//! use myevents_runtime::config::BrokerConfig;
//!
//! # fn demo() -> anyhow::Result<()> {
//! let config = BrokerConfig::from_env("memory")?;
//! let broker = myevents_runtime::broker::build(&config)?;
//! # Ok(())
//! # }
//! ```

pub mod broker;
pub mod build_info;
pub mod cli;
pub mod config;
pub mod dead_letters;
pub mod http;
pub mod idempotency;
pub mod json;
pub mod messaging;
pub mod metrics;
pub mod outbox;
pub mod paging;
pub mod problem;
pub mod shutdown;
pub mod telemetry;
