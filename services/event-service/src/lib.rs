//! # myevents-event-service
//!
//! The event service: the REST API for locations and events (default port 8181), compatible with the
//! reference MyEvents frontend, which announces what it stores as domain events (`locationCreated`,
//! `eventCreated`) through the broker port.
//!
//! It also consumes `eventBooked` ([`consumer`]) to show each event's `SeatsAvailable`.
//!
//! Layout: [`config`] (environment), [`app`] ([`Application::build`] binds the listener — port 0
//! allowed — and [`Application::run_until_stopped`] serves until shutdown), [`http`] (routes, wire
//! formats, the service's one error type).
//!
//! ```no_run
//! use myevents_event_service::{Application, Dependencies, config::EventServiceConfig};
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let config = EventServiceConfig::from_env()?;
//! let broker = myevents_runtime::broker::build(&config.broker)?;
//! let deps = Dependencies::from_config(&config.store, broker).await?;
//! let app = Application::build(&config, deps).await?;
//! println!("listening on {}", app.local_addr());
//! app.run_until_stopped(myevents_runtime::shutdown::signal()).await?;
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod config;
pub mod consumer;
pub mod http;

pub use app::{Application, Dependencies};
