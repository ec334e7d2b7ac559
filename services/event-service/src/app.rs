//! The event service in the host: what it declares ([`EventServiceSpec`]) and the names its users
//! build it by ([`Application`], [`Dependencies`]).

use std::sync::Arc;

use myevents_host::{HostConfig, HostDefaults, Service, Wiring};
use myevents_http::idempotency::Idempotency;
use myevents_http::openapi::About;
use myevents_messaging::outbox::OutboxWaker;
use myevents_platform::config::ConfigError;
use myevents_store::factory::EventStore;

use crate::config::EventServiceConfig;
use crate::consumer::EventBookedHandler;
use crate::http::{AppState, router};
use crate::service::EventService;

/// The event service, bound to its listener and ready to serve (see [`myevents_host::Application`]).
pub type Application = myevents_host::Application<EventServiceSpec>;

/// The adapters the event service runs on: its store and the broker.
pub type Dependencies = myevents_host::Dependencies<EventStore>;

/// What the event service declares to the host: routes and the `eventBooked` / `bookingCancelled`
/// consumer.
#[derive(Debug)]
pub struct EventServiceSpec;

impl Service for EventServiceSpec {
    const NAME: &'static str = "event-service";
    const DEFAULTS: HostDefaults = crate::config::DEFAULTS;
    const CONSUMES: &'static [&'static str] = crate::consumer::CONSUMES;
    const ABOUT: About = About {
        title: "MyEvents event service",
        description: "Locations with their halls, and events at them. Reading is public; creating needs the organiser role. Every location and event created is announced to the other services (`locationCreated`, `eventCreated`; see the AsyncAPI document), and each event's `SeatsAvailable` follows the booking service's `eventBooked` and `bookingCancelled` messages. Errors are `application/problem+json` (RFC 9457).",
        port: 8181,
    };
    type Config = EventServiceConfig;
    type Store = EventStore;

    fn openapi() -> utoipa::openapi::OpenApi {
        crate::http::openapi()
    }

    fn response_examples() -> Vec<myevents_http::openapi::ResponseExample> {
        crate::http::wire::response_examples()
    }

    fn config_from_env() -> Result<EventServiceConfig, ConfigError> {
        EventServiceConfig::from_env()
    }

    fn host_config(config: &EventServiceConfig) -> &HostConfig {
        &config.host
    }

    fn wire(config: &EventServiceConfig, store: EventStore, waker: OutboxWaker) -> Wiring {
        let events = EventService::new(store.events, store.locations, waker);
        let state = AppState {
            events: events.clone(),
            idempotency: Idempotency::new(store.shared.idempotency, config.host.idempotency),
        };
        Wiring {
            api: router(state),
            handler: Arc::new(EventBookedHandler {
                events,
                consumer: config.host.queue.clone(),
            }),
            periodic: Vec::new(),
        }
    }
}
