//! The booking service's use cases, between its inbound adapters (HTTP handlers, the `eventCreated`
//! consumer) and its store: the rules of seats, bookings, cancellations and their messages, in domain
//! terms only. Each operation takes a command and returns a domain value or its own error enum.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use myevents_domain::access::Principal;
use myevents_domain::booking::{Booking, BookingSeats, UserId};
use myevents_domain::id::{BookingId, EventId};
use myevents_domain::messages::{BookingCancelled, DomainEvent, EventBooked, OutboxMessage};
use myevents_domain::seats::SeatCount;
use myevents_domain::validation::ValidationError;
use myevents_messaging::outbox::OutboxWaker;
use myevents_store::{
    BookingRepository, Cancellation, PageRequest, RepositoryError, SeatHold, Settled,
};

use crate::metrics::BookingMetrics;

mod event_changes;
mod holds;
mod waitlist;

pub use holds::{HoldError, PlaceHold};
pub use waitlist::{JoinWaitlist, WaitlistError};

/// Book `seats` of an event for a user, under an id the caller reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceBooking {
    /// The booking's id (from the idempotency key's reservation, or fresh).
    pub booking_id: BookingId,
    /// Whether an earlier attempt under this id was interrupted: then the booking it may have stored
    /// is the answer.
    pub resumed: bool,
    /// The event to book.
    pub event_id: EventId,
    /// Who books.
    pub user_id: UserId,
    /// Seats requested, as the client sent them (validated here: 1 ..= the most per booking).
    pub seats: Option<i64>,
    /// The W3C `traceparent` the `eventBooked` message continues.
    pub trace_parent: Option<String>,
}

/// Why a booking was not placed.
#[derive(Debug, thiserror::Error)]
pub enum PlaceError {
    /// The seats requested are not a number from 1 to the most per booking.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No inventory for this event: not announced (yet), or unknown.
    #[error("no event with id {0} is open for booking")]
    EventNotFound(EventId),
    /// The event was called off: nothing more is booked.
    #[error("event {0} was cancelled: nothing more is booked")]
    EventCancelled(EventId),
    /// Fewer seats remain than requested.
    #[error("{requested} seats requested, {remaining} remain")]
    SoldOut {
        /// Seats that remain.
        remaining: u32,
        /// Seats requested.
        requested: u32,
    },
    /// The request stopped after holding the seats, by the fault injected for tests
    /// ([`Fault::DropAfterSeatHold`]); the hold is left for a retry or the reconciler.
    #[error("booking {0} was interrupted after its seats were held")]
    Interrupted(BookingId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

/// Cancel a booking on behalf of a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancelBooking {
    /// The booking.
    pub booking_id: BookingId,
    /// Who asks: the user who booked, or an administrator (see [`Principal::may_act_for`]).
    pub by: Principal,
    /// The W3C `traceparent` the `bookingCancelled` message continues.
    pub trace_parent: Option<String>,
}

/// Why a booking was not cancelled.
#[derive(Debug, thiserror::Error)]
pub enum CancelError {
    /// No such booking, or one the caller may not act for (someone else's booking is not shown
    /// to exist).
    #[error("no booking with id {0}")]
    NotFound(BookingId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

/// Why a list of bookings was not given.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The service knows no such event.
    #[error("no event with id {0}")]
    EventNotFound(EventId),
    /// The caller may not see these bookings: another user's (only the user and administrators
    /// may), or an event's without the organiser role.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

/// The rules the service is configured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingRules {
    /// Most seats one booking may take.
    pub max_seats_per_booking: u32,
    /// Seats on sale for an `eventCreated` message that states no capacity (`None`: such events
    /// are known but sold out).
    pub default_capacity: Option<u32>,
    /// How long a buyer's hold keeps its seats before it lapses.
    pub hold_ttl: std::time::Duration,
}

/// A crash injected between holding a booking's seats and storing the booking (`FAULT_INJECTION`),
/// for tests that prove the reconciliation; never set in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `crash-after-seat-hold`: the process aborts right after a request took a fresh seat hold.
    CrashAfterSeatHold,
    /// `drop-after-seat-hold`: the request stops right after taking a fresh seat hold and answers
    /// 503, as if its process had died; the process goes on.
    DropAfterSeatHold,
}

impl Fault {
    /// The fault named by `value` (`crash-after-seat-hold`, `drop-after-seat-hold`).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "crash-after-seat-hold" => Some(Self::CrashAfterSeatHold),
            "drop-after-seat-hold" => Some(Self::DropAfterSeatHold),
            _ => None,
        }
    }
}

/// The booking service's use cases. Cheap to clone.
#[derive(Clone)]
pub struct BookingService {
    bookings: Arc<dyn BookingRepository>,
    waker: OutboxWaker,
    rules: BookingRules,
    fault: Option<Fault>,
    metrics: BookingMetrics,
}

/// A booking of `seats` seats of `event_id` for `user_id` under id `id`, made now.
fn new_booking(id: BookingId, event_id: EventId, user_id: UserId, seats: SeatCount) -> Booking {
    Booking {
        id,
        event_id,
        user_id,
        seats,
        booked_at: now_seconds(),
        cancelled_at: None,
        cancel_reason: None,
    }
}

/// Now, to the whole second (the wire's and the store's resolution).
fn now_seconds() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}

impl BookingService {
    /// The use cases over `bookings`, counting in `metrics`; every write that stores a message
    /// wakes the relay.
    pub fn new(
        bookings: Arc<dyn BookingRepository>,
        waker: OutboxWaker,
        rules: BookingRules,
        metrics: BookingMetrics,
    ) -> Self {
        Self {
            bookings,
            waker,
            rules,
            fault: None,
            metrics,
        }
    }

    /// The same use cases with `fault` injected (see [`Fault`]).
    #[must_use]
    pub fn with_fault(mut self, fault: Option<Fault>) -> Self {
        self.fault = fault;
        self
    }

    /// Places a booking in two steps: holds its seats (one atomic write on the inventory, with the
    /// reservation record), then stores the booking with its `eventBooked` message and releases the
    /// hold. A resumed command answers the booking an interrupted attempt stored, or finishes the
    /// booking from the hold it left, never taking seats twice.
    ///
    /// # Errors
    /// [`PlaceError`]: invalid seats, unknown event, sold out, or the store's failure.
    pub async fn place(&self, command: PlaceBooking) -> Result<Booking, PlaceError> {
        let seats = BookingSeats::new(command.seats, self.rules.max_seats_per_booking)?.count();
        let (id, event_id) = (command.booking_id, command.event_id);
        if command.resumed
            && let Some(existing) = self.bookings.booking(id).await?
        {
            return Ok(existing);
        }
        let booking = new_booking(id, event_id, command.user_id, seats);
        let hold = self.take_seats(&booking, None).await?;
        if hold.fresh {
            match self.fault {
                Some(Fault::CrashAfterSeatHold) => {
                    tracing::error!(booking_id = %id, "FAULT_INJECTION: aborting after the seat hold");
                    std::process::abort();
                }
                Some(Fault::DropAfterSeatHold) => return Err(PlaceError::Interrupted(id)),
                None => {}
            }
        }
        self.store_held(&hold, command.trace_parent).await
    }

    /// When a buyer's hold taken now lapses: [`BookingRules::hold_ttl`] from now (whole seconds).
    fn hold_expiry(&self) -> DateTime<Utc> {
        let ttl =
            chrono::TimeDelta::from_std(self.rules.hold_ttl).unwrap_or(chrono::TimeDelta::MAX);
        now_seconds()
            .checked_add_signed(ttl)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Takes the seats of `booking` (see [`BookingRepository::hold_seats`]): a reservation record,
    /// or a buyer's hold lapsing at `expires_at`.
    async fn take_seats(
        &self,
        booking: &Booking,
        expires_at: Option<DateTime<Utc>>,
    ) -> Result<SeatHold, PlaceError> {
        let (event_id, seats) = (booking.event_id, booking.seats);
        match self.bookings.hold_seats(booking, expires_at).await {
            Ok(hold) => Ok(hold),
            Err(myevents_store::PlaceBookingError::SoldOut { remaining }) => {
                self.metrics.sold_out.inc();
                Err(PlaceError::SoldOut {
                    remaining: remaining.get(),
                    requested: seats.get(),
                })
            }
            Err(myevents_store::PlaceBookingError::EventNotFound) => {
                Err(PlaceError::EventNotFound(event_id))
            }
            Err(myevents_store::PlaceBookingError::EventCancelled) => {
                Err(PlaceError::EventCancelled(event_id))
            }
            Err(myevents_store::PlaceBookingError::Repository(error)) => Err(error.into()),
        }
    }

    /// Stores the booking of `hold` (see [`BookingRepository::store_held_booking`]) with its
    /// `eventBooked` message in the trace `trace_parent`.
    async fn store_held(
        &self,
        hold: &SeatHold,
        trace_parent: Option<String>,
    ) -> Result<Booking, PlaceError> {
        let booking = &hold.booking;
        let announce = OutboxMessage::new(DomainEvent::EventBooked(EventBooked {
            event_id: booking.event_id,
            user_id: booking.user_id.to_string(),
            booking_id: Some(booking.id),
            seats: Some(booking.seats.get()),
            booked_at: Some(booking.booked_at),
        }))
        .in_trace(trace_parent);
        match self.bookings.store_held_booking(hold, &announce).await? {
            Settled::Stored(booking) => {
                self.waker.wake();
                self.metrics.bookings.inc();
                self.metrics
                    .seats_per_booking
                    .observe(f64::from(booking.seats.get()));
                tracing::info!(booking_id = %booking.id, event_id = %booking.event_id,
                    seats = booking.seats.get(), remaining = hold.remaining.get(),
                    message_id = %announce.id, "booking placed");
                Ok(booking)
            }
            Settled::AlreadyStored(booking) => Ok(booking),
        }
    }

    /// Cancels a booking: gives its seats back and stores `bookingCancelled`, atomically. Cancelling
    /// again answers the cancelled booking.
    ///
    /// # Errors
    /// [`CancelError`]: no such booking, someone else's, or the store's failure.
    pub async fn cancel(&self, command: CancelBooking) -> Result<Booking, CancelError> {
        let id = command.booking_id;
        let booking = self
            .bookings
            .booking(id)
            .await?
            .ok_or(CancelError::NotFound(id))?;
        if !command.by.may_act_for(&booking.user_id) {
            return Err(CancelError::NotFound(id));
        }
        let cancelled_at = now_seconds();
        let announce = OutboxMessage::new(DomainEvent::BookingCancelled(BookingCancelled {
            booking_id: id,
            event_id: booking.event_id,
            user_id: booking.user_id.to_string(),
            seats: booking.seats.get(),
            cancelled_at,
            reason: None,
        }))
        .in_trace(command.trace_parent);
        match self
            .bookings
            .cancel_booking(id, cancelled_at, &announce)
            .await?
        {
            Cancellation::Cancelled(booking) => {
                self.waker.wake();
                tracing::info!(booking_id = %id, seats = booking.seats.get(), "booking cancelled");
                Ok(booking)
            }
            Cancellation::AlreadyCancelled(booking) => Ok(booking),
            Cancellation::NotFound => Err(CancelError::NotFound(id)),
        }
    }

    /// One booking, for its buyer or an administrator; `None` when there is none the caller `by`
    /// may see (someone else's booking is not shown to exist).
    ///
    /// # Errors
    /// The store's failure.
    pub async fn booking(
        &self,
        id: BookingId,
        by: &Principal,
    ) -> Result<Option<Booking>, RepositoryError> {
        let booking = self.bookings.booking(id).await?;
        Ok(booking.filter(|b| by.may_act_for(&b.user_id)))
    }

    /// A page of an event's bookings, for the organiser who created the event or an administrator
    /// (see [`Principal::may_see_bookings_of`]).
    ///
    /// # Errors
    /// [`ListError::Forbidden`] for anyone else (for a caller with neither role before the event
    /// is looked up), [`ListError::EventNotFound`] when the service knows no such event, or the
    /// store's failure.
    pub async fn bookings_for_event(
        &self,
        event_id: EventId,
        page: PageRequest,
        by: &Principal,
    ) -> Result<Vec<Booking>, ListError> {
        const FORBIDDEN: &str =
            "an event's bookings are shown to the organiser who created it and administrators only";
        let roles = by.roles();
        if !(roles.organiser || roles.admin) {
            return Err(ListError::Forbidden(FORBIDDEN));
        }
        let Some(inventory) = self.bookings.inventory(event_id).await? else {
            return Err(ListError::EventNotFound(event_id));
        };
        if !by.may_see_bookings_of(inventory.organiser.as_ref()) {
            return Err(ListError::Forbidden(FORBIDDEN));
        }
        Ok(self.bookings.bookings_for_event(event_id, page).await?)
    }

    /// A page of a user's bookings, for that user or an administrator.
    ///
    /// # Errors
    /// [`ListError::Forbidden`] for anyone else, or the store's failure.
    pub async fn bookings_for_user(
        &self,
        user: &UserId,
        page: PageRequest,
        by: &Principal,
    ) -> Result<Vec<Booking>, ListError> {
        if !by.may_act_for(user) {
            return Err(ListError::Forbidden(
                "a user's bookings are shown to that user and administrators only",
            ));
        }
        Ok(self.bookings.bookings_for_user(user, page).await?)
    }

    /// Reconciles the inventory with the bookings: finishes the seat returns of cancellations and
    /// the bookings whose seats are held but which were never stored, each interrupted (by a crash
    /// or a lost store) at least `grace` ago; younger ones are left to the request still running.
    /// Each is finished once whoever else tries (see [`BookingRepository::store_held_booking`]).
    /// Then cancels the bookings of cancelled events that are left (stored from a hold taken before
    /// the cancellation, or cut short by a crash). Failures are logged and left to the next run.
    pub async fn reconcile(&self, grace: std::time::Duration) {
        let cut_off = Utc::now() - chrono::TimeDelta::from_std(grace).unwrap_or_default();
        match self.bookings.finish_seat_returns(cut_off).await {
            Ok(0) => {}
            Ok(finished) => tracing::warn!(finished, "reconciliation: seat returns finished"),
            Err(error) => {
                tracing::warn!(%error, "reconciliation of seat returns failed; next time");
            }
        }
        let holds = match self.bookings.stale_holds(cut_off).await {
            Ok(holds) => holds,
            Err(error) => {
                tracing::warn!(%error, "reconciliation of seat holds failed; next time");
                return;
            }
        };
        for hold in holds {
            let id = hold.booking.id;
            match self.store_held(&hold, None).await {
                Ok(_) => {
                    self.metrics.reconciled_holds.inc();
                    tracing::warn!(booking_id = %id, event_id = %hold.booking.event_id,
                        seats = hold.booking.seats.get(), held_at = %hold.held_at,
                        "reconciliation: an interrupted booking was finished from its seat hold");
                }
                Err(error) => {
                    tracing::warn!(booking_id = %id, %error, "reconciliation of a seat hold failed; next time");
                    return;
                }
            }
        }
        let cancelled = match self.bookings.unsettled_cancelled_events().await {
            Ok(cancelled) => cancelled,
            Err(error) => {
                tracing::warn!(%error, "reconciliation of cancelled events failed; next time");
                return;
            }
        };
        for inventory in cancelled {
            let Some(cancellation) = &inventory.cancelled else {
                continue;
            };
            if let Err(error) = self
                .cancel_bookings_of(inventory.event_id, cancellation)
                .await
            {
                tracing::warn!(event_id = %inventory.event_id, %error,
                    "reconciliation of a cancelled event failed; next time");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use myevents_domain::access::Roles;
    use myevents_domain::messages::{EventCancelled, EventCreated, EventUpdated};
    use myevents_store::memory::{InMemoryBookingRepository, InMemoryOutbox};
    use myevents_store::{MAX_PAGE_LIMIT, Outbox};

    use super::*;

    struct Fixture {
        service: BookingService,
        outbox: InMemoryOutbox,
    }

    fn fixture() -> Fixture {
        let outbox = InMemoryOutbox::default();
        let service = BookingService::new(
            Arc::new(InMemoryBookingRepository::new(outbox.clone())),
            OutboxWaker::default(),
            BookingRules {
                max_seats_per_booking: 4,
                default_capacity: None,
                hold_ttl: std::time::Duration::from_secs(600),
            },
            BookingMetrics::registered(),
        );
        Fixture { service, outbox }
    }

    fn created(capacity: Option<u32>) -> EventCreated {
        EventCreated {
            id: EventId::generate(),
            name: "opera aida".to_owned(),
            location_id: None,
            start_date: DateTime::from_timestamp(1_768_000_000, 0).expect("time"),
            end_date: DateTime::from_timestamp(1_768_007_200, 0).expect("time"),
            capacity,
            hall: None,
            location_name: None,
            organiser: Some("org".to_owned()),
        }
    }

    fn place(event_id: EventId, user: &str, seats: i64) -> PlaceBooking {
        PlaceBooking {
            booking_id: BookingId::generate(),
            resumed: false,
            event_id,
            user_id: UserId::parse(user).expect("user"),
            seats: Some(seats),
            trace_parent: None,
        }
    }

    async fn event(service: &BookingService, capacity: u32) -> EventId {
        let created = created(Some(capacity));
        let id = created.id;
        assert!(service.record_event(created).await.expect("recorded"));
        id
    }

    #[tokio::test]
    async fn a_booking_takes_seats_and_stores_its_event_booked_message() {
        let Fixture { service, outbox } = fixture();
        let event_id = event(&service, 3).await;
        let booking = service
            .place(place(event_id, "alice", 2))
            .await
            .expect("placed");
        assert_eq!(booking.seats.get(), 2);
        let pending = outbox.pending(10).await.expect("outbox");
        assert_eq!(pending.len(), 1);
        assert!(matches!(
            &pending[0].event,
            DomainEvent::EventBooked(booked) if booked.booking_id == Some(booking.id)
        ));
        let refused = service.place(place(event_id, "bob", 2)).await;
        assert!(matches!(
            refused,
            Err(PlaceError::SoldOut {
                remaining: 1,
                requested: 2
            })
        ));
    }

    fn updated(id: EventId, revision: u64, capacity: u32) -> EventUpdated {
        EventUpdated {
            event: EventCreated {
                id,
                capacity: Some(capacity),
                ..created(None)
            },
            revision,
        }
    }

    fn cancelled(id: EventId, revision: u64) -> EventCancelled {
        EventCancelled {
            id,
            revision,
            cancelled_at: DateTime::from_timestamp(1_768_000_500, 0).expect("time"),
            reason: "storm".to_owned(),
        }
    }

    async fn remaining(service: &BookingService, id: EventId) -> u32 {
        service
            .bookings
            .inventory(id)
            .await
            .expect("read")
            .expect("known")
            .remaining
            .get()
    }

    fn hold_of(event_id: EventId, user: &str, seats: i64) -> PlaceHold {
        PlaceHold {
            hold_id: BookingId::generate(),
            event_id,
            user_id: UserId::parse(user).expect("user"),
            seats: Some(seats),
        }
    }

    fn principal(user: &str) -> Principal {
        Principal::new(UserId::parse(user).expect("user"), Roles::default())
    }

    #[tokio::test]
    async fn a_hold_takes_seats_until_its_holder_confirms_or_releases_it_and_only_its_holder() {
        let Fixture { service, outbox } = fixture();
        let event_id = event(&service, 5).await;
        let hold = service
            .hold(hold_of(event_id, "alice", 3))
            .await
            .expect("held");
        assert!(hold.expires_at.is_some_and(|at| at > Utc::now()));
        assert_eq!(remaining(&service, event_id).await, 2);
        let refused = service.place(place(event_id, "bob", 3)).await;
        assert!(
            matches!(refused, Err(PlaceError::SoldOut { .. })),
            "{refused:?}"
        );
        let id = hold.booking.id;
        let bob = principal("bob");
        assert!(service.seat_hold(id, &bob).await.expect("read").is_none());
        assert!(matches!(
            service.confirm_hold(id, &bob, None).await,
            Err(HoldError::NotFound(_))
        ));
        assert!(matches!(
            service.release_hold(id, &bob).await,
            Err(HoldError::NotFound(_))
        ));
        let alice = principal("alice");
        let (booking, now) = service
            .confirm_hold(id, &alice, None)
            .await
            .expect("confirmed");
        assert!(now);
        assert_eq!((booking.id, booking.seats.get()), (id, 3));
        let (again, now) = service.confirm_hold(id, &alice, None).await.expect("again");
        assert_eq!(
            (again, now),
            (booking, false),
            "confirming again answers the booking"
        );
        assert!(matches!(
            service.release_hold(id, &alice).await,
            Err(HoldError::NotFound(_))
        ));
        assert_eq!(remaining(&service, event_id).await, 2);
        let booked = outbox
            .pending(10)
            .await
            .expect("outbox")
            .iter()
            .filter(|m| m.event.name() == "eventBooked")
            .count();
        assert_eq!(booked, 1, "one eventBooked, at the confirmation");
        let other = service
            .hold(hold_of(event_id, "alice", 2))
            .await
            .expect("held");
        service
            .release_hold(other.booking.id, &alice)
            .await
            .expect("released");
        assert_eq!(remaining(&service, event_id).await, 2);
    }

    #[tokio::test]
    async fn a_lapsed_hold_gives_its_seats_back_once_and_cannot_be_confirmed() {
        let Fixture { service, .. } = fixture();
        let service = BookingService {
            rules: BookingRules {
                hold_ttl: std::time::Duration::ZERO,
                ..service.rules
            },
            ..service
        };
        let event_id = event(&service, 5).await;
        let hold = service
            .hold(hold_of(event_id, "alice", 4))
            .await
            .expect("held");
        assert_eq!(remaining(&service, event_id).await, 1);
        let refused = service
            .confirm_hold(hold.booking.id, &principal("alice"), None)
            .await;
        assert!(matches!(refused, Err(HoldError::Lapsed(_))), "{refused:?}");
        assert_eq!(service.lapse_holds().await, 1);
        assert_eq!(service.lapse_holds().await, 0, "once");
        assert_eq!(remaining(&service, event_id).await, 5);
        let refused = service
            .confirm_hold(hold.booking.id, &principal("alice"), None)
            .await;
        assert!(
            matches!(refused, Err(HoldError::NotFound(_))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn a_capacity_change_moves_the_seats_on_sale_once_and_in_revision_order() {
        let Fixture { service, .. } = fixture();
        let event_id = event(&service, 10).await;
        service
            .place(place(event_id, "alice", 4))
            .await
            .expect("placed");
        assert!(
            service
                .record_change(updated(event_id, 2, 20))
                .await
                .expect("applied")
        );
        assert_eq!(remaining(&service, event_id).await, 16);
        // Redelivered, or overtaken by revision 2: nothing changes.
        assert!(
            !service
                .record_change(updated(event_id, 2, 20))
                .await
                .expect("again")
        );
        assert!(
            !service
                .record_change(updated(event_id, 1, 5))
                .await
                .expect("older")
        );
        assert_eq!(remaining(&service, event_id).await, 16);
        assert!(
            service
                .record_change(updated(event_id, 3, 2))
                .await
                .expect("shrunk")
        );
        assert_eq!(
            remaining(&service, event_id).await,
            0,
            "never below the 4 booked"
        );
        // An update before its creation teaches the event; the creation adds nothing.
        let early = updated(EventId::generate(), 1, 7);
        let early_id = early.event.id;
        assert!(service.record_change(early).await.expect("learned"));
        assert!(
            !service
                .record_event(EventCreated {
                    id: early_id,
                    ..created(Some(100))
                })
                .await
                .expect("created later")
        );
        assert_eq!(remaining(&service, early_id).await, 7);
    }

    #[tokio::test]
    async fn a_cancelled_event_cancels_each_booking_once_and_refuses_more() {
        let Fixture { service, outbox } = fixture();
        let event_id = event(&service, 10).await;
        let mut booked = Vec::new();
        for user in ["alice", "bob"] {
            booked.push(
                service
                    .place(place(event_id, user, 2))
                    .await
                    .expect("placed"),
            );
        }
        assert_eq!(
            service
                .record_cancellation(cancelled(event_id, 1))
                .await
                .expect("cancelled"),
            2
        );
        assert_eq!(
            service
                .record_cancellation(cancelled(event_id, 1))
                .await
                .expect("again"),
            0
        );
        let refused = service.place(place(event_id, "carol", 1)).await;
        assert!(
            matches!(refused, Err(PlaceError::EventCancelled(id)) if id == event_id),
            "{refused:?}"
        );
        let alice = service
            .bookings
            .booking(booked[0].id)
            .await
            .expect("read")
            .expect("stored");
        assert_eq!(
            alice.cancel_reason.as_deref(),
            Some("the event was cancelled: storm")
        );
        let reasons: Vec<Option<String>> = outbox
            .pending(100)
            .await
            .expect("outbox")
            .into_iter()
            .filter_map(|m| match m.event {
                DomainEvent::BookingCancelled(c) => Some(c.reason),
                _ => None,
            })
            .collect();
        assert_eq!(reasons.len(), 2, "one bookingCancelled per booking");
        assert!(
            reasons
                .iter()
                .all(|r| r.as_deref() == Some("the event was cancelled: storm"))
        );
        // A cancellation before the creation: the event is known as cancelled.
        let early = EventId::generate();
        service
            .record_cancellation(cancelled(early, 1))
            .await
            .expect("learned");
        assert!(
            !service
                .record_event(EventCreated {
                    id: early,
                    ..created(Some(10))
                })
                .await
                .expect("created later")
        );
        assert!(matches!(
            service.place(place(early, "dave", 1)).await,
            Err(PlaceError::EventCancelled(_))
        ));
    }

    #[tokio::test]
    async fn seats_outside_one_to_the_most_per_booking_and_unknown_events_are_refused() {
        let Fixture { service, .. } = fixture();
        let event_id = event(&service, 10).await;
        for seats in [0, 5, -1] {
            let refused = service.place(place(event_id, "alice", seats)).await;
            assert!(matches!(refused, Err(PlaceError::Invalid(_))), "{seats}");
        }
        let unknown = EventId::generate();
        let refused = service.place(place(unknown, "alice", 1)).await;
        assert!(matches!(refused, Err(PlaceError::EventNotFound(id)) if id == unknown));
    }

    #[tokio::test]
    async fn a_resumed_command_answers_the_stored_booking_without_taking_seats_twice() {
        let Fixture { service, outbox } = fixture();
        let event_id = event(&service, 2).await;
        let first = place(event_id, "alice", 2);
        let stored = service.place(first.clone()).await.expect("placed");
        let resumed = service
            .place(PlaceBooking {
                resumed: true,
                ..first
            })
            .await
            .expect("resumed");
        assert_eq!(resumed, stored);
        assert_eq!(outbox.pending(10).await.expect("outbox").len(), 1);
    }

    #[tokio::test]
    async fn only_the_user_who_booked_cancels_others_find_nothing_and_cancelling_again_answers_the_same()
     {
        let Fixture { service, outbox } = fixture();
        let event_id = event(&service, 2).await;
        let booking = service
            .place(place(event_id, "alice", 2))
            .await
            .expect("placed");
        let cancel = |user: &str| CancelBooking {
            booking_id: booking.id,
            by: Principal::new(UserId::parse(user).expect("user"), Roles::default()),
            trace_parent: None,
        };
        assert!(matches!(
            service.cancel(cancel("bob")).await,
            Err(CancelError::NotFound(_))
        ));
        let cancelled = service.cancel(cancel("alice")).await.expect("cancelled");
        assert!(cancelled.cancelled_at.is_some());
        let again = service.cancel(cancel("alice")).await.expect("again");
        assert_eq!(again, cancelled);
        // One eventBooked, one bookingCancelled, and the seats are for sale again.
        assert_eq!(outbox.pending(10).await.expect("outbox").len(), 2);
        service
            .place(place(event_id, "carol", 2))
            .await
            .expect("seats back");
        let missing = CancelBooking {
            booking_id: BookingId::generate(),
            ..cancel("alice")
        };
        assert!(matches!(
            service.cancel(missing).await,
            Err(CancelError::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn an_event_without_capacity_gets_the_default_or_none_and_redelivery_changes_nothing() {
        let Fixture { service, .. } = fixture();
        let sold_out = created(None);
        let event_id = sold_out.id;
        assert!(
            service
                .record_event(sold_out.clone())
                .await
                .expect("recorded")
        );
        assert!(!service.record_event(sold_out).await.expect("again"));
        assert!(matches!(
            service.place(place(event_id, "alice", 1)).await,
            Err(PlaceError::SoldOut { remaining: 0, .. })
        ));
        let organiser = Principal::new(
            UserId::parse("org").expect("user"),
            Roles {
                organiser: true,
                ..Roles::default()
            },
        );
        let listed = service
            .bookings_for_event(event_id, PageRequest::new(None, MAX_PAGE_LIMIT), &organiser)
            .await
            .expect("listed");
        assert_eq!(listed, Vec::new());
        let unknown = service
            .bookings_for_event(EventId::generate(), PageRequest::new(None, 10), &organiser)
            .await;
        assert!(matches!(unknown, Err(ListError::EventNotFound(_))));
    }

    #[tokio::test]
    async fn bookings_are_shown_to_their_buyer_administrators_and_for_an_event_to_its_organiser() {
        let Fixture { service, .. } = fixture();
        let event_id = event(&service, 4).await;
        let booking = service
            .place(place(event_id, "alice", 1))
            .await
            .expect("placed");
        let who =
            |name: &str, roles: Roles| Principal::new(UserId::parse(name).expect("user"), roles);
        let alice = who("alice", Roles::default());
        let bob = who("bob", Roles::default());
        let admin = who(
            "root",
            Roles {
                admin: true,
                organiser: false,
            },
        );
        let organiser = who(
            "org",
            Roles {
                admin: false,
                organiser: true,
            },
        );
        let page = PageRequest::new(None, 10);
        for (caller, sees) in [
            (&alice, true),
            (&bob, false),
            (&admin, true),
            (&organiser, false),
        ] {
            let seen = service.booking(booking.id, caller).await.expect("read");
            assert_eq!(seen.is_some(), sees, "{caller:?} reads the booking");
            let listed = service
                .bookings_for_user(&booking.user_id, page, caller)
                .await;
            assert_eq!(listed.is_ok(), sees, "{caller:?} lists alice's bookings");
        }
        // The event was created by "org"; another organiser does not see its bookings.
        let other_organiser = who(
            "org2",
            Roles {
                admin: false,
                organiser: true,
            },
        );
        for (caller, sees) in [
            (&alice, false),
            (&admin, true),
            (&organiser, true),
            (&other_organiser, false),
        ] {
            let listed = service.bookings_for_event(event_id, page, caller).await;
            assert_eq!(
                listed.is_ok(),
                sees,
                "{caller:?} lists the event's bookings"
            );
            if !sees {
                assert!(matches!(listed, Err(ListError::Forbidden(_))));
            }
        }
    }
}
