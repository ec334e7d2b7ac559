//! # myevents-store
//!
//! The repository ports of both services, in domain terms, and their adapters.
//!
//! - Ports: [`LocationRepository`], [`EventRepository`] (event service) and [`BookingRepository`]
//!   (booking service: seat inventory and bookings, changed together atomically).
//! - Adapters: [`memory`] (in-process, for the embedded mode and unit tests), with feature
//!   `mongodb` `mongo` (MongoDB through the official driver), and with feature `dynamodb` `dynamo`
//!   (Amazon DynamoDB through the official AWS SDK).
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
use myevents_domain::booking::{Booking, SeatInventory, UserId, WaitlistEntry};
use myevents_domain::event::{Event, EventCancellation};
use myevents_domain::id::{BookingId, EventId, LocationId, ObjectId, WaitlistEntryId};
use myevents_domain::location::Location;
use myevents_domain::messages::OutboxMessage;
use myevents_domain::seats::SeatCount;

pub mod config;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "dynamodb")]
pub mod dynamo;
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

/// What can go wrong in any repository. Each variant keeps its [`Cause`] (the driver's error) and
/// tells it in its own text, once: the variants have no `source`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepositoryError {
    /// An item with that id (or unique key) is already stored.
    #[error("already stored: {0}")]
    Conflict(Cause),
    /// The store cannot be reached now; the operation may succeed later (HTTP 503).
    #[error("store unavailable: {0}")]
    Unavailable(Cause),
    /// What the write depends on was deleted meanwhile (an event's location): nothing is stored.
    #[error("deleted meanwhile: {0}")]
    Gone(Cause),
    /// Anything else.
    #[error("unexpected store error: {0}")]
    Unexpected(Cause),
}

/// How [`LocationRepository::delete`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocationDeletion {
    /// Deleted, and its message stored.
    Deleted,
    /// Nothing changed: the stored location is not at the revision the caller read (another
    /// change came first), or it is gone.
    Stale,
    /// Nothing changed: an event to come takes place there (neither cancelled nor ended at the
    /// time given); this is the one that ends first.
    InUse(EventId),
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
    /// The event was called off: nothing more is booked.
    #[error("the event is cancelled")]
    EventCancelled,
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

/// Why a buyer could not join an event's waitlist.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinWaitlistError {
    /// The booking service has not heard of the event.
    #[error("unknown event")]
    EventNotFound,
    /// The event was called off.
    #[error("the event is cancelled")]
    EventCancelled,
    /// The seats wanted are on sale now and nobody waits: book or hold them instead.
    #[error("{remaining} seats are on sale: book them instead of waiting")]
    SeatsAvailable {
        /// Seats on sale.
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

/// How many messages wait in an outbox and since when (see [`Outbox::backlog`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Backlog {
    /// Unpublished messages, all of them (not one relay batch).
    pub pending: u64,
    /// When the oldest of them was stored; `None` when none waits.
    pub oldest: Option<chrono::DateTime<chrono::Utc>>,
}

/// The transactional outbox of one service's store: messages stored together with the state changes
/// they announce, waiting to be published.
///
/// Several relays (one per replica of a service) may share one outbox. The one that holds the claim
/// ([`Outbox::claim`]) publishes; the others stand by and take over when its lease lapses. One
/// publisher at a time keeps every message published in stored order, per aggregate too, and never
/// by two relays at once.
#[async_trait]
pub trait Outbox: Send + Sync {
    /// Up to `limit` unpublished messages, oldest first: in the order they were stored (by message
    /// id, a UUID v7), so reading batch after batch, each marked published before the next, returns
    /// every message in stored order, per aggregate too. Costs in proportion to `limit` and what is
    /// pending, not to everything stored.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, RepositoryError>;

    /// Marks the messages `ids` published, in one write where the store allows; unknown or already
    /// published ids are skipped.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (some of `ids` may be marked: marking again is
    /// harmless).
    async fn mark_published(&self, ids: &[String]) -> Result<(), RepositoryError>;

    /// The whole backlog: every pending message counted, and the age of the oldest.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn backlog(&self) -> Result<Backlog, RepositoryError>;

    /// Claims the right to publish this outbox for `relay` (an id unique to one running relay) for
    /// `lease`: `true` when `relay` holds it now (newly, or renewed because it held it already),
    /// `false` while another relay's lease runs. Leases are compared on the clocks of the relays'
    /// machines: keep `lease` well above their skew.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn claim(&self, relay: &str, lease: std::time::Duration)
    -> Result<bool, RepositoryError>;

    /// Gives up `relay`'s claim (at shutdown), so that a standing-by relay takes over at once. Does
    /// nothing when `relay` does not hold it.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (the lease then lapses by itself).
    async fn release(&self, relay: &str) -> Result<(), RepositoryError>;
}

/// Seats taken from an event's inventory for one booking that is not stored yet, recorded in the
/// same atomic write as the seats are taken. Two kinds:
///
/// - a booking's **reservation record** (`expires_at: None`): a booking request holds its seats,
///   then stores the booking and settles the hold; one interrupted between the two is found and
///   finished (see [`BookingRepository::stale_holds`]) instead of leaking its seats;
/// - a **buyer's hold** (`expires_at: Some`): seats kept for a buyer until they confirm it into
///   the booking (see [`BookingRepository::claim_hold`]), release it, or it lapses at
///   `expires_at` and its seats go back (see [`BookingRepository::release_hold`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatHold {
    /// The booking the seats are held for, as it will be stored.
    pub booking: Booking,
    /// Which attempt took the hold (random text): a booking id stored under another attempt's
    /// hold means this hold's seats go back.
    pub attempt: String,
    /// When the seats were taken (millisecond precision).
    pub held_at: chrono::DateTime<chrono::Utc>,
    /// `true` when this call took the seats; `false` when it found an earlier attempt's hold.
    pub fresh: bool,
    /// Seats of the event that remain (right after the hold when `fresh`, else when it was found).
    pub remaining: SeatCount,
    /// When a buyer's hold lapses (millisecond precision); `None` for a reservation record.
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// One event's seats as its store holds them at one instant (see
/// [`BookingRepository::inventory_snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventorySnapshot {
    /// The inventory: capacity and the seats on sale.
    pub inventory: SeatInventory,
    /// Every seat hold of the event, of both kinds (`remaining` as in `inventory`).
    pub holds: Vec<SeatHold>,
    /// Its waitlist in the order its buyers joined, each entry with its place or offer.
    pub waitlist: Vec<WaitlistEntry>,
}

/// What [`BookingRepository::store_held_booking`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// The booking is stored with the hold's seats (now, or by an earlier write of this hold).
    Stored(Booking),
    /// Another attempt had stored this booking id; this hold's seats went back. The stored booking.
    AlreadyStored(Booking),
}

impl Settled {
    /// The booking as stored.
    pub fn booking(&self) -> &Booking {
        match self {
            Self::Stored(booking) | Self::AlreadyStored(booking) => booking,
        }
    }
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

/// An organiser's change of an event, as the booking service applies it to the event's inventory
/// (see [`BookingRepository::change_inventory`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryChange {
    /// The event after an edit (`eventUpdated`): its name, capacity and organiser.
    Edited {
        /// The event's name.
        name: String,
        /// Seats on sale in all.
        capacity: SeatCount,
        /// The event's organiser, when the message named one.
        organiser: Option<UserId>,
    },
    /// The event was called off (`eventCancelled`), when and why.
    Cancelled(EventCancellation),
}

impl InventoryChange {
    /// Applies the change to `inventory`, which it brings to `revision`: an edit sets the name and
    /// organiser and resizes the capacity ([`SeatInventory::resize`]); a cancellation marks the
    /// event cancelled (the first cancellation stays).
    pub(crate) fn apply(&self, inventory: &mut SeatInventory, revision: u64) {
        inventory.revision = revision;
        match self {
            Self::Edited {
                name,
                capacity,
                organiser,
            } => {
                inventory.event_name.clone_from(name);
                inventory.organiser.clone_from(organiser);
                inventory.resize(*capacity);
            }
            Self::Cancelled(cancellation) => {
                inventory
                    .cancelled
                    .get_or_insert_with(|| cancellation.clone());
            }
        }
    }
}

/// What [`BookingRepository::change_inventory`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InventoryChanged {
    /// The change was applied; the inventory as it is after it.
    Applied(SeatInventory),
    /// The inventory holds this revision or a later one: the change was applied before, or a later
    /// one overtook it. Nothing changed.
    Stale(SeatInventory),
}

/// What [`BookingRepository::cancel_event_bookings`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventBookingsCancelled {
    /// The bookings cancelled by this call, as stored afterwards.
    pub cancelled: Vec<Booking>,
    /// Whether the event's bookings are all cancelled and none can be stored any more (no seat
    /// hold is left to become one): then the event is no longer among
    /// [`BookingRepository::unsettled_cancelled_events`].
    pub settled: bool,
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

/// How long an inbox remembers a message it applied: 30 days. A redelivery or a dead-letter replay of
/// a message within this time is recognised and applied no second time; RabbitMQ redelivers within
/// seconds of a lost consumer, and dead letters are meant to be replayed within days. (MongoDB: a TTL
/// index on `inbox.received_at`; memory: expired ids are swept as the inbox grows.)
pub const INBOX_RETENTION: std::time::Duration = std::time::Duration::from_secs(30 * 24 * 60 * 60);

/// One consumed message as an inbox records it: the consumer that applied it (its subscription: the
/// RabbitMQ queue or the Kafka consumer group) and the message's id. Two consumers applying the same
/// message are two records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InboxKey<'a> {
    /// The subscription's name (queue or consumer group).
    pub consumer: &'a str,
    /// The message id (the broker message's `message_id`, a UUID v7 for our own messages).
    pub message_id: &'a str,
}

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

    /// One page of locations in id order (deleted ones are not listed).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn list(&self, page: PageRequest) -> Result<Vec<Location>, RepositoryError>;

    /// Stores an organiser's change of a location — `location` as it is after the change, with its
    /// `revision` one above the stored one — and, in the same atomic write, `announce` in the
    /// outbox; only when the stored location is still at `location.revision - 1` (optimistic
    /// concurrency). Events keep the copy of the location they were created with. `Ok(true)` when
    /// stored; `Ok(false)` when nothing was (another change came first, or no such location).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (nothing is stored then).
    async fn update(
        &self,
        location: &Location,
        announce: &OutboxMessage,
    ) -> Result<bool, RepositoryError>;

    /// Deletes location `id` as of `now`, when it is still at `revision` (the one the caller read)
    /// and no event to come takes place there (one neither cancelled nor ended at `now`), and in
    /// the same atomic write stores `announce`. Atomic with [`EventRepository::insert`]: an event
    /// created there concurrently either is seen here (then [`LocationDeletion::InUse`]) or is
    /// refused ([`RepositoryError::Gone`]). A deleted location is neither read nor listed again,
    /// and its id is not reused.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (nothing is deleted then).
    async fn delete(
        &self,
        id: LocationId,
        revision: u64,
        announce: &OutboxMessage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<LocationDeletion, RepositoryError>;
}

/// Events of the event service.
#[async_trait]
pub trait EventRepository: Send + Sync {
    /// Stores a new event and, in the same atomic write, `announce` in the outbox.
    ///
    /// # Errors
    /// [`RepositoryError::Conflict`] when its id is taken, [`RepositoryError::Gone`] when its
    /// location was deleted (see [`LocationRepository::delete`]; nothing is stored then);
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
    /// inbox key within [`INBOX_RETENTION`]: the effect and the inbox record are one atomic write
    /// (memory: one lock; MongoDB: one multi-document transaction over `inbox` and `events`), so a
    /// crash between them cannot count a message twice or lose it. Reading an event never loads its
    /// inbox.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (nothing is recorded then).
    async fn record_booked_seats(
        &self,
        id: EventId,
        key: InboxKey<'_>,
        seats: i64,
    ) -> Result<SeatChange, RepositoryError>;

    /// One page of events in id order.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn list(&self, page: PageRequest) -> Result<Vec<Event>, RepositoryError>;

    /// Stores an organiser's change of an event — `event` as it is after the change (name, times,
    /// duration, capacity, cancellation), with its `revision` one above the stored one — and, in the
    /// same atomic write, `announce` in the outbox; only when the stored event is still at
    /// `event.revision - 1` (optimistic concurrency: the change was made to what is stored). The
    /// seats booked are the store's, never overwritten. `Ok(true)` when stored; `Ok(false)` when
    /// nothing was (another change came first, or no such event).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (nothing is stored then).
    async fn update(
        &self,
        event: &Event,
        announce: &OutboxMessage,
    ) -> Result<bool, RepositoryError>;
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

    /// Applies an organiser's change of event `event_id` at `revision` to its inventory, when the
    /// inventory holds an older revision (else [`InventoryChanged::Stale`], nothing changed). An edit
    /// sets the name and organiser and resizes the capacity (see [`SeatInventory::resize`]: the
    /// remaining seats move by the difference, never below the seats booked and held); a
    /// cancellation marks the event cancelled, after which [`BookingRepository::hold_seats`]
    /// refuses it. An event not known yet is learned from the change (an edit: its seats all
    /// remaining; a cancellation: no seats), and its `eventCreated`, arriving later, changes nothing.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn change_inventory(
        &self,
        event_id: EventId,
        revision: u64,
        change: &InventoryChange,
    ) -> Result<InventoryChanged, RepositoryError>;

    /// Cancels the bookings of the cancelled event `event_id` that are not cancelled yet (up to
    /// 1000 per call), each at `cancelled_at` with `reason` and, in the same atomic write, the
    /// message `announce` makes of it (the booking as cancelled) in the outbox; each booking at most
    /// once. Their seats are not given back: the event sells nothing more. When nothing is left
    /// (no booking to cancel, no seat hold that could still become a booking) the event is marked
    /// settled.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (some bookings may be cancelled: calling again
    /// finishes the others).
    async fn cancel_event_bookings(
        &self,
        event_id: EventId,
        cancelled_at: chrono::DateTime<chrono::Utc>,
        reason: &str,
        announce: &(dyn for<'b> Fn(&'b Booking) -> OutboxMessage + Send + Sync),
    ) -> Result<EventBookingsCancelled, RepositoryError>;

    /// Cancelled events not settled yet (up to 1000), for the reconciliation to finish with
    /// [`BookingRepository::cancel_event_bookings`]: a crash, or a booking whose seats were held
    /// before the cancellation and stored after it, leaves one.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn unsettled_cancelled_events(&self) -> Result<Vec<SeatInventory>, RepositoryError>;

    /// The inventory of one event with its seat holds and its waitlist, read together (MongoDB: one
    /// document), so that the seats on sale and held add up as they did at one instant; `None` for
    /// an unknown event. For operators and checks: the seats on sale plus held plus booked make
    /// the capacity.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn inventory_snapshot(
        &self,
        event_id: EventId,
    ) -> Result<Option<InventorySnapshot>, RepositoryError>;

    /// The inventory of one event, if known.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn inventory(&self, event_id: EventId) -> Result<Option<SeatInventory>, RepositoryError>;

    /// Takes `booking.seats` from the event's remaining seats and, in the same atomic write, records
    /// a [`SeatHold`] for the booking in the inventory: the reservation record of a booking being
    /// placed (`expires_at: None`), or a buyer's hold that lapses at `expires_at`. Under any
    /// concurrency the remaining seats never drop below zero. While buyers wait on the event's
    /// waitlist without an offer, no seat is taken (sold out: the seats that come back are theirs
    /// first). When a hold for this booking id is
    /// already recorded (an interrupted earlier attempt under the same idempotency key), that hold is
    /// returned instead (`fresh: false`) and no seat is taken again.
    ///
    /// # Errors
    /// [`PlaceBookingError::EventNotFound`], [`PlaceBookingError::EventCancelled`],
    /// [`PlaceBookingError::SoldOut`] (nothing changed), or a repository error (the hold may have
    /// been recorded: a retry finds it).
    async fn hold_seats(
        &self,
        booking: &Booking,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<SeatHold, PlaceBookingError>;

    /// The hold (of either kind) recorded for booking id `id`, if any.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn seat_hold(&self, id: BookingId) -> Result<Option<SeatHold>, RepositoryError>;

    /// Turns the buyer's hold `hold` into its booking's reservation record (no expiry), in one
    /// atomic write, when it is still a buyer's hold, lapses after `now` and its event is not
    /// cancelled: from then on no release and no lapse can give its seats back, and
    /// [`BookingRepository::store_held_booking`] (or, after a crash, the reconciliation) stores the
    /// booking. `false` when nothing changed: the hold was released, lapsed, claimed before, or its
    /// event was cancelled.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (nothing changed, or the claim was made: a retry
    /// finds the reservation record).
    async fn claim_hold(
        &self,
        hold: &SeatHold,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Gives the seats of the buyer's hold `hold` back to its event and removes the hold, in one
    /// atomic write, when it is still a buyer's hold (not claimed) — with `lapsed_at`, only when it
    /// lapsed by then. At most once, whoever calls (the buyer, the lapse job of any replica): `true`
    /// for the call that gave the seats back, `false` for any other.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (nothing changed, or the seats went back: a
    /// retry answers `false`).
    async fn release_hold(
        &self,
        hold: &SeatHold,
        lapsed_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<bool, RepositoryError>;

    /// Adds `entry` (without offer) to the end of its event's waitlist, in one atomic write that
    /// also makes every later booking and hold of the event wait behind it
    /// ([`BookingRepository::hold_seats`] refuses other buyers while anyone waits without an offer:
    /// the seats that come back go to the waitlist first). Only when the event cannot give the
    /// seats now: fewer remain than wanted, or others wait already. An entry with this id already
    /// on the list (a retry) is answered as it is. The entry answered has its place.
    ///
    /// # Errors
    /// [`JoinWaitlistError`]: unknown or cancelled event, seats on sale now, or the store's failure.
    async fn join_waitlist(
        &self,
        entry: &WaitlistEntry,
    ) -> Result<WaitlistEntry, JoinWaitlistError>;

    /// The waitlist entry `id`, with its place or its offer, if it is on a list.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn waitlist_entry(
        &self,
        id: WaitlistEntryId,
    ) -> Result<Option<WaitlistEntry>, RepositoryError>;

    /// Every waitlist entry of `user_id` (up to 1000), oldest first, each with its place or offer.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn waitlist_of_user(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<WaitlistEntry>, RepositoryError>;

    /// Removes the waitlist entry `id` (its buyer left); an offer it had stays a hold of its own.
    /// `false` when it was not on a list.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn leave_waitlist(&self, id: WaitlistEntryId) -> Result<bool, RepositoryError>;

    /// Offers seats that are on sale to the buyers waiting for them, event by event (up to 1000
    /// events), first come first served: while the first entry still waiting wants no more seats
    /// than remain, its seats are taken as a buyer's hold in its buyer's name (id: a fresh booking
    /// id), lapsing at `expires_at`, and the entry records the offer, in one atomic write; an entry
    /// wanting more than remain stops the offers of its event (no one overtakes it). Entries whose
    /// offer lapsed by `now` leave their list. Returns the entries offered seats by this call; each
    /// entry is offered seats once, whoever calls.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure (the offers made so far stand).
    async fn offer_to_waitlists(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<WaitlistEntry>, RepositoryError>;

    /// Buyers' holds that lapsed by `now` and were not given back yet (up to 1000), earliest
    /// first, for the lapse job to release with [`BookingRepository::release_hold`].
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn lapsed_holds(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SeatHold>, RepositoryError>;

    /// Stores the booking of `hold` with `announce` in its outbox and releases the hold: its seats
    /// now belong to the booking. When the booking id is already stored by this very hold (a write the
    /// store applied before it was retried) that counts as success; when it is stored under another
    /// attempt's hold, this hold's seats are given back and the stored booking is returned. Each hold
    /// is settled once, whoever calls (the request, its retry, the reconciler). A buyer's hold is
    /// stored only as claimed ([`BookingRepository::claim_hold`]; pass it with `expires_at: None`).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure: the hold stays, for a retry or the reconciler;
    /// `Unexpected` for a hold with `expires_at` (not claimed).
    async fn store_held_booking(
        &self,
        hold: &SeatHold,
        announce: &OutboxMessage,
    ) -> Result<Settled, RepositoryError>;

    /// Reservation records (holds without expiry) recorded before `held_before` and not yet settled
    /// (up to 1000), oldest first: the bookings a crash (or a lost store) interrupted between taking
    /// the seats (or claiming a buyer's hold) and storing the booking, for the reconciler to finish
    /// with [`BookingRepository::store_held_booking`]. Buyers' holds are not among them.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn stale_holds(
        &self,
        held_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SeatHold>, RepositoryError>;

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
    /// store that marks a cancellation's return in progress clears the marks of the returns that
    /// finished (MongoDB: every such booking in two commands, not one write per cancellation). A
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

/// A buyer's hold becomes a booking only once claimed ([`BookingRepository::claim_hold`]): until
/// then a release or its lapse may give its seats back.
pub(crate) fn unclaimed_guard(hold: &SeatHold) -> Result<(), RepositoryError> {
    match hold.expires_at {
        None => Ok(()),
        Some(_) => Err(RepositoryError::Unexpected(Cause::msg(format!(
            "the buyer's hold {} is stored as a booking only once claimed",
            hold.booking.id
        )))),
    }
}

/// `list` (one event's waitlist, in the order its buyers joined) with the place of each entry still
/// waiting: 1, 2, … among those without an offer.
pub(crate) fn with_places(list: &[WaitlistEntry]) -> Vec<WaitlistEntry> {
    let mut place = 0;
    list.iter()
        .map(|entry| {
            let waiting = entry.offer.is_none();
            if waiting {
                place += 1;
            }
            WaitlistEntry {
                place: waiting.then_some(place),
                ..entry.clone()
            }
        })
        .collect()
}

/// Now, to the millisecond (what every store keeps).
pub(crate) fn now_millis() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}
