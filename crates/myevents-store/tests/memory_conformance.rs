//! The repository conformance suite against the in-memory adapters.

use std::sync::Arc;

use myevents_store::conformance::StoreUnderTest;
use myevents_store::memory::{
    InMemoryBookingRepository, InMemoryEventRepository, InMemoryLocationRepository, InMemoryOutbox,
};
use myevents_store::{BookingRepository, EventRepository, LocationRepository};

mod locations {
    use super::*;
    myevents_store::location_repository_conformance!(async {
        let outbox = InMemoryOutbox::default();
        StoreUnderTest {
            repo: Arc::new(InMemoryLocationRepository::new(outbox.clone()))
                as Arc<dyn LocationRepository>,
            outbox: Arc::new(outbox),
        }
    });
}

mod location_deletion {
    use super::*;
    myevents_store::location_deletion_conformance!(async {
        let events = InMemoryEventRepository::new(InMemoryOutbox::default());
        (
            Arc::new(events.locations()) as Arc<dyn LocationRepository>,
            Arc::new(events) as Arc<dyn EventRepository>,
        )
    });
}

mod events {
    use super::*;
    myevents_store::event_repository_conformance!(async {
        let outbox = InMemoryOutbox::default();
        StoreUnderTest {
            repo: Arc::new(InMemoryEventRepository::new(outbox.clone()))
                as Arc<dyn EventRepository>,
            outbox: Arc::new(outbox),
        }
    });
}

mod bookings {
    use super::*;
    myevents_store::booking_repository_conformance!(async {
        let outbox = InMemoryOutbox::default();
        StoreUnderTest {
            repo: Arc::new(InMemoryBookingRepository::new(outbox.clone()))
                as Arc<dyn BookingRepository>,
            outbox: Arc::new(outbox),
        }
    });
}

mod idempotency {
    use super::*;
    myevents_store::idempotency_repository_conformance!(async {
        Arc::new(myevents_store::memory::InMemoryIdempotencyRepository::default())
            as Arc<dyn myevents_store::IdempotencyRepository>
    });
}
