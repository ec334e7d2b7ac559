//! What a service declares to the host ([`Service`]), and what its wiring returns ([`Wiring`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use myevents_broker::{MessageHandler, Subscription};
use myevents_http::cache::ReadCache;
use myevents_http::openapi::{About, ResponseExample};
use myevents_messaging::outbox::OutboxWaker;
use myevents_store::factory::ServiceStore;
use utoipa_axum::router::OpenApiRouter;

use crate::config::{Config, FromEnv, HostConfig, HostDefaults};

/// A future a periodic job returns.
pub type JobFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A job the host runs every `every` while the service runs (the first run one period after the
/// start), and stops before the consumer at shutdown, abandoning a run in progress: a job must be
/// safe to interrupt and run again.
pub struct Periodic {
    /// Its name, for the logs.
    pub name: &'static str,
    /// Time between two runs.
    pub every: Duration,
    /// One run.
    pub job: Box<dyn Fn() -> JobFuture + Send + Sync>,
}

/// What a service hands the host once its use cases are built.
pub struct Wiring<State> {
    /// What its handlers share (the state of [`Service::routes`]).
    pub state: State,
    /// Handles the messages of the service's subscription.
    pub handler: Arc<dyn MessageHandler>,
    /// Jobs to run periodically.
    pub periodic: Vec<Periodic>,
    /// The answers of its reads it keeps, if any: served in front of the router
    /// (`myevents_http::cache::KeptAnswerLayer`).
    pub reads: Option<ReadCache>,
}

/// What one service declares to run in the host: names, defaults, its settings, its store, its
/// routes and how its use cases are built. The host does the rest alike for every service: it
/// reads the configuration, splits [`Service::routes`] into the router it serves (behind the shared
/// middleware, with the `Idempotency-Key` store) and the OpenAPI document it publishes, and runs the
/// consumer, the outbox relay and the periodic jobs.
pub trait Service: 'static {
    /// Its name in logs, metrics (the `service` label) and `/version`, e.g. `booking-service`.
    const NAME: &'static str;
    /// The defaults of its environment.
    const DEFAULTS: HostDefaults;
    /// The event names its subscription is bound to.
    const CONSUMES: &'static [&'static str];
    /// What its OpenAPI document says about it (title, description, default port).
    const ABOUT: About;
    /// Its own settings, beyond the host's ([`HostConfig`]); `()` for none.
    type Config: FromEnv + Send + Sync;
    /// Its store (`myevents_store::factory`).
    type Store: ServiceStore;
    /// What its handlers share: its use cases.
    type State: Clone + Send + Sync + 'static;

    /// Its API routes, each with its OpenAPI description (`utoipa_axum::routes!`), so that route
    /// and document cannot part.
    fn routes() -> OpenApiRouter<Self::State>;

    /// Real answers of its operations, shown as their examples (none by default).
    fn response_examples() -> Vec<ResponseExample> {
        Vec::new()
    }

    /// Builds its use cases over `store` (their writes wake the relay through `waker`) and returns
    /// the handlers' state, the consumer's handler and the periodic jobs.
    fn wire(
        config: &Config<Self::Config>,
        store: Self::Store,
        waker: OutboxWaker,
    ) -> Wiring<Self::State>;
}

/// The OpenAPI 3.1 document of service `S` as `frontend-contract/` holds it, both authentication
/// modes at once: its API routes ([`Service::routes`]), the probes and the documentation routes,
/// completed by [`myevents_http::openapi::finish`]. A running service serves it at
/// `GET /openapi.json` as its `AUTH_MODE` answers ([`myevents_http::openapi::for_auth_mode`]).
pub fn api_document<S: Service>() -> serde_json::Value {
    let mut api = S::routes().into_openapi();
    api.merge(crate::probes::routes().into_openapi());
    api.merge(myevents_http::openapi::docs_paths());
    myevents_http::openapi::finish(api, &S::ABOUT, &S::response_examples())
}

/// The subscription of `S` with `config`: its queue bound to [`Service::CONSUMES`].
pub fn subscription<S: Service>(config: &HostConfig) -> Subscription {
    Subscription::new(&config.queue, S::CONSUMES)
}
