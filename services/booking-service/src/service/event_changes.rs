//! What the booking service learns of events: their creation (`eventCreated`), an organiser's
//! edits (`eventUpdated`) and cancellations (`eventCancelled`), applied to the seat inventory.

use myevents_domain::booking::{Booking, SeatInventory, UserId, event_cancelled_reason};
use myevents_domain::event::EventCancellation;
use myevents_domain::id::EventId;
use myevents_domain::messages::{
    BookingCancelled, DomainEvent, EventCancelled, EventCreated, EventUpdated, OutboxMessage,
};
use myevents_domain::seats::SeatCount;
use myevents_store::{InventoryChange, InventoryChanged, RepositoryError};

use super::BookingService;

impl BookingService {
    /// Records the seat inventory of a created event (its capacity, else the configured default, else
    /// 0 seats). Idempotent: a redelivered `eventCreated` leaves the inventory as it is. Returns
    /// whether it was new.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn record_event(&self, created: EventCreated) -> Result<bool, RepositoryError> {
        let capacity = self.capacity_of(created.id, created.capacity);
        let (event_id, name) = (created.id, created.name);
        // A value that cannot be a user id names nobody: then administrators only list the event.
        let organiser = created.organiser.and_then(|text| UserId::parse(&text).ok());
        let inventory =
            SeatInventory::new(event_id, name, SeatCount::new(capacity)).organised_by(organiser);
        let added = self.bookings.add_inventory(&inventory).await?;
        tracing::info!(%event_id, capacity, added, "event recorded for booking");
        Ok(added)
    }

    /// The seats on sale of an event whose announcement states `capacity`: it, else the configured
    /// default, else 0 (logged).
    fn capacity_of(&self, event_id: EventId, capacity: Option<u32>) -> u32 {
        capacity.or(self.rules.default_capacity).unwrap_or_else(|| {
            tracing::warn!(%event_id, "an event announced without capacity and no \
                DEFAULT_EVENT_CAPACITY: the event is recorded with 0 seats");
            0
        })
    }

    /// Applies an organiser's edit of an event (`eventUpdated`) to its inventory: its name,
    /// organiser and capacity (the seats on sale move by the difference, never below the seats
    /// booked and held). A revision applied before, or older than one applied, changes nothing;
    /// an event not known yet is learned from it. Returns whether it was applied.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn record_change(&self, updated: EventUpdated) -> Result<bool, RepositoryError> {
        let event = updated.event;
        let capacity = SeatCount::new(self.capacity_of(event.id, event.capacity));
        let change = InventoryChange::Edited {
            name: event.name,
            capacity,
            organiser: event.organiser.and_then(|text| UserId::parse(&text).ok()),
        };
        let changed = self
            .bookings
            .change_inventory(event.id, updated.revision, &change)
            .await?;
        let applied = matches!(changed, InventoryChanged::Applied(_));
        let (InventoryChanged::Applied(inventory) | InventoryChanged::Stale(inventory)) = changed;
        tracing::info!(event_id = %event.id, revision = updated.revision, applied,
            capacity = inventory.capacity.get(), remaining = inventory.remaining.get(),
            "event change recorded for booking");
        Ok(applied)
    }

    /// Applies an event's cancellation (`eventCancelled`): nothing more is booked, and every
    /// booking of the event is cancelled with the organiser's reason and its own
    /// `bookingCancelled`, once (also when the message comes again: a crash may have cut the
    /// cancellations short). Returns how many bookings this call cancelled.
    ///
    /// # Errors
    /// The store's failure (a redelivery, or the reconciliation, finishes the work).
    pub async fn record_cancellation(
        &self,
        cancelled: EventCancelled,
    ) -> Result<usize, RepositoryError> {
        let change = InventoryChange::Cancelled(EventCancellation {
            at: cancelled.cancelled_at,
            reason: cancelled.reason,
        });
        let changed = self
            .bookings
            .change_inventory(cancelled.id, cancelled.revision, &change)
            .await?;
        let (InventoryChanged::Applied(inventory) | InventoryChanged::Stale(inventory)) = changed;
        match inventory.cancelled {
            Some(cancellation) => self.cancel_bookings_of(cancelled.id, &cancellation).await,
            // An older revision than one applied, and the event is not cancelled: nothing to do.
            None => Ok(0),
        }
    }

    /// Cancels the bookings of the event `event_id`, called off as `cancellation` says, that are not
    /// cancelled yet, each with its `bookingCancelled` and the reason
    /// [`event_cancelled_reason`] makes of the organiser's (see
    /// [`myevents_store::BookingRepository::cancel_event_bookings`]), page after page. Returns how many it
    /// cancelled.
    pub(super) async fn cancel_bookings_of(
        &self,
        event_id: EventId,
        cancellation: &EventCancellation,
    ) -> Result<usize, RepositoryError> {
        let (at, reason) = (
            cancellation.at,
            &event_cancelled_reason(&cancellation.reason),
        );
        let announce = |booking: &Booking| {
            OutboxMessage::new(DomainEvent::BookingCancelled(BookingCancelled {
                booking_id: booking.id,
                event_id: booking.event_id,
                user_id: booking.user_id.to_string(),
                seats: booking.seats.get(),
                cancelled_at: at,
                reason: Some(reason.to_owned()),
            }))
        };
        let mut count = 0;
        loop {
            let done = self
                .bookings
                .cancel_event_bookings(event_id, at, reason, &announce)
                .await?;
            count += done.cancelled.len();
            if !done.cancelled.is_empty() {
                self.waker.wake();
            }
            if done.settled || done.cancelled.is_empty() {
                break;
            }
        }
        tracing::info!(%event_id, cancelled = count, "bookings of a cancelled event cancelled");
        Ok(count)
    }
}
