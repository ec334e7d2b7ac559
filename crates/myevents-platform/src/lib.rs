//! # myevents-platform
//!
//! What every MyEvents process needs whatever it does, with no knowledge of HTTP routes, stores or
//! brokers:
//!
//! - [`config`]: typed environment variables whose errors name the variable, and [`config::redact_url`]
//!   to keep credentials out of logs.
//! - [`error`]: [`error::Cause`], the underlying error a port error keeps for the log.
//! - [`metrics`]: the Prometheus registry's text rendering and the `/metrics` server on its own port.
//! - [`telemetry`]: `tracing` set-up (JSON in containers, human-readable in a terminal; OTLP export
//!   with feature `otlp`).
//! - [`trace`]: W3C Trace Context (`traceparent`), carried from HTTP requests through messages.
//! - [`shutdown`]: a future that resolves on SIGTERM or ctrl-c.
//! - [`build_info`]: version and git commit of the build (`GET /version`).
//!
//! ```no_run
//! # fn demo() -> Result<(), myevents_platform::config::ConfigError> {
//! let limit: u32 = myevents_platform::config::parse_or("MAX_SEATS_PER_BOOKING", 10)?;
//! # Ok(())
//! # }
//! ```

pub mod build_info;
pub mod config;
pub mod error;
pub mod metrics;
pub mod shutdown;
pub mod telemetry;
pub mod trace;
