//! # myevents-store
//!
//! The repository ports of both services, in domain terms, and their adapters.
//!
//! - Ports: [`LocationRepository`], [`EventRepository`] (event service) and [`BookingRepository`]
//!   (booking service: seat inventory and bookings, changed together atomically).
//! - Adapters: [`memory`] (in-process, for the embedded mode and unit tests) and, with feature
//!   `mongodb`, `mongo` (MongoDB through the official driver).
//! - [`StoreHealth`]: whether a store can serve now (for readiness).
//! - [`Outbox`]: the transactional outbox. Every write that announces something takes the
//!   [`OutboxMessage`] and stores it in the same atomic write; a relay publishes pending messages and
//!   marks them published.
//! - [`IdempotencyRepository`]: what each client `Idempotency-Key` did, for replaying responses.
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
use myevents_domain::messages::OutboxMessage;
use myevents_domain::seats::SeatCount;

pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod factory;
pub mod idempotency;
pub mod memory;
#[cfg(feature = "mongodb")]
pub mod mongo;

pub use idempotency::{
    Begin, IdempotencyRepository, IdempotencyScope, IdempotentRequest, StoredResponse,
};

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

pub use myevents_platform::error::Cause;

/// What can go wrong in any repository. Each variant keeps its [`Cause`] (the driver's error, with
/// its chain of sources) for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryError {
    /// An item with that id (or unique key) is already stored.
    #[error("already stored: {0}")]
    Conflict(#[source] Cause),
    /// The store cannot be reached now; the operation may succeed later (HTTP 503).
    #[error("store unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// Anything else.
    #[error("unexpected store error: {0}")]
    Unexpected(#[source] Cause),
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

/// The transactional outbox of one service's store: messages stored together with the state changes
/// they announce, waiting to be published.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Up to `limit` unpublished messages, oldest first.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, RepositoryError>;

    /// Marks the message `id` published; marking an unknown or already published id does nothing.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn mark_published(&self, id: &str) -> Result<(), RepositoryError>;
}

/// What [`BookingRepository::cancel_booking`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancellation {
    /// Cancelled now; the booking as it is stored afterwards.
    Cancelled(Booking),
    /// It had been cancelled before; nothing changed.
    AlreadyCancelled(Booking),
    /// No booking with that id.
    NotFound,
}

/// What [`EventRepository::record_booked_seats`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatChange {
    /// The seats were recorded.
    Applied,
    /// This message was recorded before; nothing changed.
    Duplicate,
    /// No event with that id.
    UnknownEvent,
}

/// Messages whose ids an event keeps for deduplication (the newest ones).
pub const INBOX_WINDOW: usize = 1000;

/// Locations of the event service.
#[async_trait]
pub trait LocationRepository: Send + Sync {
    /// Stores a new location and, in the same atomic write, `announce` in the outbox.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when its id is taken (nothing is stored then);
    /// `Unavailable`/`Unexpected` on store failure.
    async fn insert(
        &self,
        location: &Location,
        announce: &OutboxMessage,
    ) -> Result<(), RepositoryError>;

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
    /// Stores a new event and, in the same atomic write, `announce` in the outbox.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when its id is taken (nothing is stored then);
    /// `Unavailable`/`Unexpected` on store failure.
    async fn insert(&self, event: &Event, announce: &OutboxMessage) -> Result<(), RepositoryError>;

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

    /// Adds `seats` to the seats booked of event `id` (negative: seats given back), at most once per
    /// `message_id`: the effect and the record of the message are one atomic write (an inbox).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn record_booked_seats(
        &self,
        id: EventId,
        message_id: &str,
        seats: i64,
    ) -> Result<SeatChange, RepositoryError>;

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
    /// booking with `announce` in its outbox, or does neither. Under any concurrency the remaining seats
    /// never drop below zero. Returns the seats that remain afterwards.
    ///
    /// # Errors
    /// [`PlaceBookingError::EventNotFound`], [`PlaceBookingError::SoldOut`] (nothing changed), or a
    /// repository error.
    async fn place_booking(
        &self,
        booking: &Booking,
        announce: &OutboxMessage,
    ) -> Result<SeatCount, PlaceBookingError>;

    /// Cancels booking `id` at `cancelled_at`: marks it cancelled with `announce` in the outbox and
    /// gives its seats back to the event's inventory, at most once. Idempotent: cancelling a cancelled
    /// booking changes nothing (and finishes giving its seats back if a crash interrupted that).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn cancel_booking(
        &self,
        id: BookingId,
        cancelled_at: chrono::DateTime<chrono::Utc>,
        announce: &OutboxMessage,
    ) -> Result<Cancellation, RepositoryError>;

    /// Finishes giving back the seats of bookings cancelled before `cancelled_before` whose return a
    /// crash interrupted (up to 1000 per call), each at most once; returns how many it finished. A
    /// store whose cancellation is one atomic write (memory) never has any.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn finish_seat_returns(
        &self,
        cancelled_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, RepositoryError>;

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
