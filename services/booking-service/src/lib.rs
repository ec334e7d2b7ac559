//! # myevents-booking-service
//!
//! The booking service: the REST API for bookings (default port 8282) and the seat inventory of every
//! event it learned of from `eventCreated` messages (it never calls the event service). A booking takes
//! seats atomically — never below zero — and is announced as `eventBooked`.
//!
//! Layout: [`config`] (environment), [`app`] ([`Application::build`] binds the listener — port 0
//! allowed — and starts the consumer; [`Application::run_until_stopped`] serves until shutdown),
//! [`consumer`] (the `eventCreated` handler), [`http`] (routes, wire format, the service's error type).
//!
//! ```no_run
//! use myevents_booking_service::{Application, Dependencies, config::BookingServiceConfig};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let config = BookingServiceConfig::from_env()?;
//! let broker = myevents_runtime::broker::build(&config.broker)?;
//! let deps = Dependencies::from_config(&config.store, broker).await?;
//! let app = Application::build(&config, deps).await?;
//! app.run_until_stopped(myevents_runtime::shutdown::signal()).await?;
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod config;
pub mod consumer;
pub mod http;
pub mod metrics;

pub use app::{Application, Dependencies};
