//! # myevents-event-service
//!
//! The event service: the REST API for locations and events (default port 8181), compatible with the
//! reference MyEvents frontend, which announces what it stores as domain events (`locationCreated`,
//! `eventCreated`) through the broker port. It also consumes `eventBooked` and `bookingCancelled`
//! ([`consumer`]) to show each event's `SeatsAvailable`.
//!
//! Layout: [`service`] (the use cases: [`EventService::create_event`],
//! [`EventService::create_location`], …), [`http`] (routes that extract → call a use case → map, the
//! wire formats, the service's error type), [`consumer`], [`config`] (its defaults and its setting), [`app`] (what the
//! service declares to the host, [`myevents_host`], which binds, serves and shuts down).
//!
//! ```no_run
//! use myevents_event_service::{Application, Dependencies, EventServiceSpec};
//! use myevents_host::Service;
//! use myevents_store::config::StoreConfig;
//!
//! # async fn demo() -> anyhow::Result<()> {
//! let config = myevents_host::Config::from_env(&EventServiceSpec::DEFAULTS)?;
//! let broker = myevents_messaging::broker::build(&myevents_broker::config::BrokerConfig::Memory, &[])?;
//! let deps = Dependencies::from_config(&StoreConfig::Memory, broker).await?;
//! let app = Application::build(&config, deps).await?;
//! println!("listening on {}", app.local_addr());
//! app.run_until_stopped(myevents_platform::shutdown::signal()).await?;
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod config;
pub mod consumer;
pub mod http;
pub mod service;

pub use app::{Application, Dependencies, EventServiceSpec};
pub use service::EventService;
