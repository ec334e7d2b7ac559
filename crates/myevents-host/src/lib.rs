//! # myevents-host
//!
//! The one service host both MyEvents services run in. A service declares only what is its own — its
//! settings, its store, its routes, its consumer's handler and its periodic jobs — by
//! implementing [`Service`]; the host does the rest the same way for every service:
//!
//! - binds the listener (port 0 allowed) and the metrics server, puts the routes behind the shared
//!   middleware (`myevents_http::layers::with_common_layers`) with `/healthz`, `/readyz` (store,
//!   consumer, shutdown) and `/version`;
//! - starts the consumer of the service's subscription and the outbox relay
//!   (`myevents_messaging::Messaging`), and the periodic jobs;
//! - serves until shutdown, then drains requests, stops the jobs and the consumer, lets the relay
//!   publish what is pending and closes the publisher ([`Application::run_until_stopped`]);
//! - runs the binary's command line ([`run_binary`], [`cli`]).
//!
//! Modules: [`config`] (what the host reads, [`Config`]), [`service`] (what a service declares),
//! [`application`] (a service running, and how it stops), [`binary`] (a service binary's `main`),
//! [`cli`] (its command line); `probes` (`/healthz`, `/readyz`, `/version`).
//!
//! ```no_run
//! # async fn demo<S: myevents_host::Service>(config: myevents_host::Config<S::Config>) -> anyhow::Result<()> {
//! use myevents_host::{Application, Dependencies};
//! use myevents_messaging::broker::Broker;
//! use myevents_broker::memory::InMemoryBroker;
//!
//! let deps = Dependencies::in_memory(Broker::in_memory(&InMemoryBroker::default()));
//! let app = Application::<S>::build(&config, deps).await?;
//! println!("listening on {}", app.local_addr());
//! app.run_until_stopped(myevents_platform::shutdown::signal()).await?;
//! # Ok(())
//! # }
//! ```

pub mod application;
pub mod binary;
pub mod cli;
pub mod config;
mod probes;
pub mod service;

pub use application::{Application, Dependencies};
pub use binary::run_binary;
pub use config::{Config, DEFAULT_CONSUMER_FAILING_LIMIT, FromEnv, HostConfig, HostDefaults};
pub use service::{JobFuture, Periodic, Service, Wiring, api_document, subscription};
