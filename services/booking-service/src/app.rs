//! The booking service in the host: what it declares ([`BookingServiceSpec`]) and the names its
//! users build it by ([`Application`], [`Dependencies`]).

use std::sync::Arc;

use myevents_host::{HostConfig, HostDefaults, Periodic, Service, Wiring};
use myevents_http::idempotency::Idempotency;
use myevents_http::openapi::About;
use myevents_messaging::outbox::OutboxWaker;
use myevents_platform::config::ConfigError;
use myevents_store::factory::BookingStore;

use crate::config::BookingServiceConfig;
use crate::consumer::EventCreatedHandler;
use crate::http::{AppState, router};
use crate::service::BookingService;

/// The booking service, bound to its listener, its consumer running (see
/// [`myevents_host::Application`]).
pub type Application = myevents_host::Application<BookingServiceSpec>;

/// The adapters the booking service runs on: its store and the broker.
pub type Dependencies = myevents_host::Dependencies<BookingStore>;

/// What the booking service declares to the host: routes, the `eventCreated` consumer, the
/// reconciliation of the inventory with the bookings.
#[derive(Debug)]
pub struct BookingServiceSpec;

impl Service for BookingServiceSpec {
    const NAME: &'static str = "booking-service";
    const DEFAULTS: HostDefaults = crate::config::DEFAULTS;
    const CONSUMES: &'static [&'static str] = crate::consumer::CONSUMES;
    const ABOUT: About = About {
        title: "MyEvents booking service",
        description: "Bookings of seats of events, and the seat inventory behind them: no seat is ever sold twice. Booking needs a caller; a booking is visible to the user who made it and to administrators, an event's list of bookings to the organiser who created it and to administrators. Bookings and cancellations are announced to the event service (`eventBooked`, `bookingCancelled`; see the AsyncAPI document); the events it sells come from `eventCreated`. Errors are `application/problem+json` (RFC 9457).",
        port: 8282,
    };
    type Config = BookingServiceConfig;
    type Store = BookingStore;

    fn openapi() -> utoipa::openapi::OpenApi {
        crate::http::openapi()
    }

    fn response_examples() -> Vec<myevents_http::openapi::ResponseExample> {
        crate::http::wire::response_examples()
    }

    fn config_from_env() -> Result<BookingServiceConfig, ConfigError> {
        BookingServiceConfig::from_env()
    }

    fn host_config(config: &BookingServiceConfig) -> &HostConfig {
        &config.host
    }

    fn wire(config: &BookingServiceConfig, store: BookingStore, waker: OutboxWaker) -> Wiring {
        crate::metrics::register();
        let bookings =
            BookingService::new(store.bookings, waker, config.rules()).with_fault(config.fault);
        let reconciling = bookings.clone();
        let grace = config.reconcile_grace;
        let state = AppState {
            bookings: bookings.clone(),
            idempotency: Idempotency::new(store.shared.idempotency, config.host.idempotency),
        };
        Wiring {
            api: router(state),
            handler: Arc::new(EventCreatedHandler { bookings }),
            periodic: vec![Periodic {
                name: "reconciliation",
                every: config.reconcile_every,
                job: Box::new(move || {
                    let bookings = reconciling.clone();
                    Box::pin(async move { bookings.reconcile(grace).await })
                }),
            }],
        }
    }
}
