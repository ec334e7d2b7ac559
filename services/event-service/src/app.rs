//! The event service in the host: what it declares ([`EventServiceSpec`]) and the names its users
//! build it by ([`Application`], [`Dependencies`]).

use std::sync::Arc;

use myevents_host::{Config, HostDefaults, Service, Wiring};
use myevents_http::openapi::{About, ResponseExample};
use myevents_messaging::outbox::OutboxWaker;
use myevents_store::factory::EventStore;
use utoipa_axum::router::OpenApiRouter;

use crate::config::EventServiceConfig;
use crate::consumer::EventBookedHandler;
use crate::http::Api;
use crate::service::EventService;

/// The event service, bound to its listener and ready to serve (see [`myevents_host::Application`]).
pub type Application = myevents_host::Application<EventServiceSpec>;

/// The adapters the event service runs on: its store and the broker.
pub type Dependencies = myevents_host::Dependencies<EventStore>;

/// What the event service declares to the host: its routes over [`EventService`] and the
/// `eventBooked` / `bookingCancelled` consumer; its one setting, how long reads are kept.
#[derive(Debug)]
pub struct EventServiceSpec;

impl Service for EventServiceSpec {
    const NAME: &'static str = "event-service";
    const DEFAULTS: HostDefaults = crate::config::DEFAULTS;
    const CONSUMES: &'static [&'static str] = crate::consumer::CONSUMES;
    const ABOUT: About = crate::http::ABOUT;
    type Config = EventServiceConfig;
    type Store = EventStore;
    type State = Api;

    fn routes() -> OpenApiRouter<Api> {
        crate::http::routes()
    }

    fn response_examples() -> Vec<ResponseExample> {
        crate::http::wire::response_examples()
    }

    fn wire(
        config: &Config<EventServiceConfig>,
        store: EventStore,
        waker: OutboxWaker,
    ) -> Wiring<Api> {
        let events = EventService::new(store.events, store.locations, waker);
        let api = Api::new(events.clone(), config.service.read_cache_max_age);
        Wiring {
            reads: Some(api.reads.clone()),
            state: api,
            handler: Arc::new(EventBookedHandler {
                events,
                consumer: config.host.queue.clone(),
            }),
            periodic: Vec::new(),
        }
    }
}
