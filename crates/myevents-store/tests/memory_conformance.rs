//! The repository conformance suite against the in-memory adapters.

use std::sync::Arc;

use myevents_store::memory::{
    InMemoryBookingRepository, InMemoryEventRepository, InMemoryLocationRepository,
};
use myevents_store::{BookingRepository, EventRepository, LocationRepository};

mod locations {
    use super::*;
    myevents_store::location_repository_conformance!(async {
        Arc::new(InMemoryLocationRepository::default()) as Arc<dyn LocationRepository>
    });
}

mod events {
    use super::*;
    myevents_store::event_repository_conformance!(async {
        Arc::new(InMemoryEventRepository::default()) as Arc<dyn EventRepository>
    });
}

mod bookings {
    use super::*;
    myevents_store::booking_repository_conformance!(async {
        Arc::new(InMemoryBookingRepository::default()) as Arc<dyn BookingRepository>
    });
}
