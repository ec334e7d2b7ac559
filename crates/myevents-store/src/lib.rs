//! # myevents-store
//!
//! The repository ports of both services, in domain terms, and their adapters.
//!
//! - Ports: [`LocationRepository`], [`EventRepository`] (event service) and [`BookingRepository`]
//!   (booking service: seat inventory and bookings, changed together atomically).
//! - Adapters: [`memory`] (in-process, for the embedded mode and unit tests) and, with feature
//!   `mongodb`, `mongo` (MongoDB through the official driver).
//! - [`StoreHealth`]: whether a store can serve now (for readiness).
//! - Feature `conformance`: the [`conformance`] suite that every adapter must pass.
//!
//! ```no_run
//! use std::sync::Arc;
//! use myevents_store::{EventRepository, memory::InMemoryEventRepository};
//!
//! let events: Arc<dyn EventRepository> = Arc::new(InMemoryEventRepository::default());
//! ```

use async_trait::async_trait;
use myevents_domain::booking::{Booking, SeatInventory, UserId};
use myevents_domain::event::Event;
use myevents_domain::id::{BookingId, EventId, LocationId, ObjectId};
use myevents_domain::location::Location;
use myevents_domain::seats::SeatCount;

pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod memory;
#[cfg(feature = "mongodb")]
pub mod mongo;

/// Most items one page of a listing may hold.
pub const MAX_PAGE_LIMIT: usize = 1000;

/// Which page of a listing to read: items are ordered by id (that is, by creation time); `after` is the
/// last id of the previous page (keyset pagination), `limit` the most items to return (1 ..= 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// Items with an id greater than this one; `None` for the first page.
    pub after: Option<ObjectId>,
    /// Most items to return, clamped to 1 ..= [`MAX_PAGE_LIMIT`].
    pub limit: usize,
}

impl PageRequest {
    /// A page of up to `limit` items after `after`.
    pub fn new(after: Option<ObjectId>, limit: usize) -> Self {
        Self {
            after,
            limit: limit.clamp(1, MAX_PAGE_LIMIT),
        }
    }

    /// The first page with up to `limit` items.
    pub fn first(limit: usize) -> Self {
        Self::new(None, limit)
    }
}

/// What can go wrong in any repository.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryError {
    /// An item with that id (or unique key) is already stored.
    #[error("already stored: {0}")]
    Conflict(String),
    /// The store cannot be reached now; the operation may succeed later (HTTP 503).
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else; the cause is in the message, for the log.
    #[error("unexpected store error: {0}")]
    Unexpected(String),
}

/// Why a booking could not be placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlaceBookingError {
    /// The booking service has not heard of the event.
    #[error("unknown event")]
    EventNotFound,
    /// Fewer seats remain than the booking asks for.
    #[error("only {remaining} seats remain")]
    SoldOut {
        /// Seats that remain.
        remaining: SeatCount,
    },
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Whether a store can serve requests now (readiness).
#[async_trait]
pub trait StoreHealth: Send + Sync {
    /// `Ok` when the store answers and its start-up work is done.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] saying what is not ready.
    async fn check(&self) -> Result<(), RepositoryError>;
}

/// A store that is always ready: memory.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysReady;

#[async_trait]
impl StoreHealth for AlwaysReady {
    async fn check(&self) -> Result<(), RepositoryError> {
        Ok(())
    }
}

/// Locations of the event service.
#[async_trait]
pub trait LocationRepository: Send + Sync {
    /// Stores a new location.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when its id is taken; `Unavailable`/`Unexpected` on store failure.
    async fn insert(&self, location: &Location) -> Result<(), RepositoryError>;

    /// The location with this id, if stored.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn get(&self, id: LocationId) -> Result<Option<Location>, RepositoryError>;

    /// One page of locations in id order.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn list(&self, page: PageRequest) -> Result<Vec<Location>, RepositoryError>;
}

/// Events of the event service.
#[async_trait]
pub trait EventRepository: Send + Sync {
    /// Stores a new event.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when its id is taken; `Unavailable`/`Unexpected` on store failure.
    async fn insert(&self, event: &Event) -> Result<(), RepositoryError>;

    /// The event with this id, if stored.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn get(&self, id: EventId) -> Result<Option<Event>, RepositoryError>;

    /// The oldest event with exactly this name, if any (names are not unique).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn find_by_name(&self, name: &str) -> Result<Option<Event>, RepositoryError>;

    /// One page of events in id order.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn list(&self, page: PageRequest) -> Result<Vec<Event>, RepositoryError>;
}

/// The booking service's seat inventory and bookings.
#[async_trait]
pub trait BookingRepository: Send + Sync {
    /// Records an event the booking service learned of. Idempotent: when the event is already known,
    /// nothing changes (its remaining seats are kept) and `false` is returned; `true` when it was added.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn add_inventory(&self, inventory: &SeatInventory) -> Result<bool, RepositoryError>;

    /// The inventory of one event, if known.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn inventory(&self, event_id: EventId) -> Result<Option<SeatInventory>, RepositoryError>;

    /// Places a booking atomically: takes `booking.seats` from the event's remaining seats and stores the
    /// booking, or does neither. Under any concurrency the remaining seats never drop below zero.
    /// Returns the seats that remain afterwards.
    ///
    /// # Errors
    /// [`PlaceBookingError::EventNotFound`], [`PlaceBookingError::SoldOut`] (nothing changed), or a
    /// repository error.
    async fn place_booking(&self, booking: &Booking) -> Result<SeatCount, PlaceBookingError>;

    /// The booking with this id, if stored.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn booking(&self, id: BookingId) -> Result<Option<Booking>, RepositoryError>;

    /// One page of an event's bookings in id order.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn bookings_for_event(
        &self,
        event_id: EventId,
        page: PageRequest,
    ) -> Result<Vec<Booking>, RepositoryError>;

    /// One page of a user's bookings in id order.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn bookings_for_user(
        &self,
        user_id: &UserId,
        page: PageRequest,
    ) -> Result<Vec<Booking>, RepositoryError>;
}
