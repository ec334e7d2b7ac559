//! The booking service in the host: what it declares ([`BookingServiceSpec`]) and the names its
//! users build it by ([`Application`], [`Dependencies`]).

use std::sync::Arc;

use myevents_host::{Config, HostDefaults, Periodic, Service, Wiring};
use myevents_http::openapi::{About, ResponseExample};
use myevents_messaging::outbox::OutboxWaker;
use myevents_store::factory::BookingStore;
use utoipa_axum::router::OpenApiRouter;

use crate::config::BookingServiceConfig;
use crate::consumer::EventMessagesHandler;
use crate::metrics::BookingMetrics;
use crate::service::BookingService;

/// The booking service, bound to its listener, its consumer running (see
/// [`myevents_host::Application`]).
pub type Application = myevents_host::Application<BookingServiceSpec>;

/// The adapters the booking service runs on: its store and the broker.
pub type Dependencies = myevents_host::Dependencies<BookingStore>;

/// What the booking service declares to the host: its routes over [`BookingService`], the
/// `eventCreated` consumer, the reconciliation of the inventory with the bookings.
#[derive(Debug)]
pub struct BookingServiceSpec;

impl Service for BookingServiceSpec {
    const NAME: &'static str = "booking-service";
    const DEFAULTS: HostDefaults = crate::config::DEFAULTS;
    const CONSUMES: &'static [&'static str] = crate::consumer::CONSUMES;
    const ABOUT: About = crate::http::ABOUT;
    type Config = BookingServiceConfig;
    type Store = BookingStore;
    type State = BookingService;

    fn routes() -> OpenApiRouter<BookingService> {
        crate::http::routes()
    }

    fn response_examples() -> Vec<ResponseExample> {
        crate::http::wire::response_examples()
    }

    fn wire(
        config: &Config<BookingServiceConfig>,
        store: BookingStore,
        waker: OutboxWaker,
    ) -> Wiring<BookingService> {
        let settings = &config.service;
        let bookings = BookingService::new(
            store.bookings,
            waker,
            settings.rules(),
            BookingMetrics::registered(),
        )
        .with_fault(settings.fault);
        let reconciling = bookings.clone();
        let lapsing = bookings.clone();
        let grace = settings.reconcile_grace;
        Wiring {
            state: bookings.clone(),
            handler: Arc::new(EventMessagesHandler { bookings }),
            periodic: vec![
                Periodic {
                    name: "reconciliation",
                    every: settings.reconcile_every,
                    job: Box::new(move || {
                        let bookings = reconciling.clone();
                        Box::pin(async move { bookings.reconcile(grace).await })
                    }),
                },
                Periodic {
                    name: "lapsed holds and waitlist offers",
                    every: settings.hold_sweep_every,
                    job: Box::new(move || {
                        let bookings = lapsing.clone();
                        Box::pin(async move {
                            // Seats a lapse gave back are offered to the waitlists at once.
                            bookings.lapse_holds().await;
                            bookings.offer_to_waitlists().await;
                        })
                    }),
                },
            ],
            reads: None,
        }
    }
}
