//! # myevents-booking-service
//!
//! The booking service: the REST API for bookings (default port 8282) and the seat inventory of every
//! event it learned of from `eventCreated` messages (it never calls the event service). A booking takes
//! seats atomically — never below zero — and is announced as `eventBooked`.
//!
//! Layout: [`service`] (the use cases: [`BookingService::place`], [`BookingService::cancel`], …),
//! [`http`] (routes that extract → call a use case → map, the wire format, the service's error type),
//! [`consumer`] (the `eventCreated` handler), [`config`] (environment), [`app`] (what the service
//! declares to the host, [`myevents_host`], which binds, serves and shuts down), [`metrics`].
//!
//! ```no_run
//! use myevents_booking_service::{Application, BookingServiceSpec, Dependencies};
//! use myevents_host::Service;
//! use myevents_store::config::StoreConfig;
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let config = myevents_host::Config::from_env(&BookingServiceSpec::DEFAULTS)?;
//! let broker = myevents_messaging::broker::build(&myevents_broker::config::BrokerConfig::Memory, &[])?;
//! let deps = Dependencies::from_config(&StoreConfig::Memory, broker).await?;
//! let app = Application::build(&config, deps).await?;
//! app.run_until_stopped(myevents_platform::shutdown::signal()).await?;
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod config;
pub mod consumer;
pub mod http;
pub mod metrics;
pub mod service;

pub use app::{Application, BookingServiceSpec, Dependencies};
pub use service::BookingService;
