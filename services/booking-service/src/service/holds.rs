//! Buyers' holds: seats kept for a buyer until they confirm the hold into its booking, release
//! it, or it lapses (see [`myevents_store::BookingRepository::claim_hold`] and [`myevents_store::BookingRepository::release_hold`]).

use chrono::Utc;
use myevents_domain::access::Principal;
use myevents_domain::booking::{Booking, BookingSeats, UserId};
use myevents_domain::id::{BookingId, EventId};
use myevents_store::{RepositoryError, SeatHold};

use super::{BookingService, PlaceError, new_booking};

/// Hold seats of an event for a buyer for [`BookingRules::hold_ttl`](super::BookingRules::hold_ttl), under an id the caller
/// reserved (the id of the booking the hold becomes once confirmed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceHold {
    /// The hold's id (from the idempotency key's reservation, or fresh).
    pub hold_id: BookingId,
    /// The event.
    pub event_id: EventId,
    /// Who holds.
    pub user_id: UserId,
    /// Seats requested, as the client sent them (validated here: 1 ..= the most per booking).
    pub seats: Option<i64>,
}

/// Why a hold was not confirmed, released or shown.
#[derive(Debug, thiserror::Error)]
pub enum HoldError {
    /// No such hold the caller may see: never made, someone else's, released, or lapsed and
    /// given back.
    #[error("no hold with id {0} (released, lapsed, or never made)")]
    NotFound(BookingId),
    /// The hold lapsed before it was confirmed; its seats go back.
    #[error("hold {0} lapsed before it was confirmed")]
    Lapsed(BookingId),
    /// The hold's event was called off.
    #[error("the event of hold {0} was cancelled: nothing more is booked")]
    EventCancelled(BookingId),
    /// Storing the booking failed (see [`PlaceError`]).
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

impl BookingService {
    /// Holds seats for a buyer (see [`PlaceHold`]): taken at once, like a booking's, and kept
    /// until the buyer confirms the hold ([`BookingService::confirm_hold`]) or releases it, or it
    /// lapses after [`BookingRules::hold_ttl`](super::BookingRules::hold_ttl) ([`BookingService::lapse_holds`]). A hold under an
    /// id already held is answered as it is (a retry).
    ///
    /// # Errors
    /// [`PlaceError`]: invalid seats, unknown or cancelled event, sold out, or the store's failure.
    pub async fn hold(&self, command: PlaceHold) -> Result<SeatHold, PlaceError> {
        let seats = BookingSeats::new(command.seats, self.rules.max_seats_per_booking)?.count();
        let expires_at = self.hold_expiry();
        let booking = new_booking(command.hold_id, command.event_id, command.user_id, seats);
        let hold = self.take_seats(&booking, Some(expires_at)).await?;
        if hold.fresh {
            self.metrics.holds.inc();
            tracing::info!(hold_id = %hold.booking.id, event_id = %hold.booking.event_id,
                seats = seats.get(), %expires_at, "seats held");
        }
        Ok(hold)
    }

    /// The hold `id` as its holder (or an administrator, `by`) sees it; `None` when there is none
    /// they may see (released, lapsed and given back, confirmed, or someone else's).
    ///
    /// # Errors
    /// The store's failure.
    pub async fn seat_hold(
        &self,
        id: BookingId,
        by: &Principal,
    ) -> Result<Option<SeatHold>, RepositoryError> {
        let hold = self.bookings.seat_hold(id).await?;
        Ok(hold.filter(|h| h.expires_at.is_some() && by.may_act_for(&h.booking.user_id)))
    }

    /// Confirms the hold `id` into its booking (same id) for its holder or an administrator `by`:
    /// claims the hold, so that no lapse can take its seats any more, then stores the booking
    /// with its `eventBooked`. Idempotent: confirming a confirmed hold answers its booking.
    /// Returns the booking and whether this call stored it.
    ///
    /// # Errors
    /// [`HoldError`]: no such hold for the caller, a lapsed hold, a cancelled event, or the
    /// store's failure.
    pub async fn confirm_hold(
        &self,
        id: BookingId,
        by: &Principal,
        trace_parent: Option<String>,
    ) -> Result<(Booking, bool), HoldError> {
        let confirmed_before = |booking: Option<Booking>| {
            booking
                .filter(|b| by.may_act_for(&b.user_id))
                .map(|b| (b, false))
        };
        if let Some(done) = confirmed_before(self.bookings.booking(id).await?) {
            return Ok(done);
        }
        let hold = self
            .bookings
            .seat_hold(id)
            .await?
            .filter(|h| by.may_act_for(&h.booking.user_id))
            .ok_or(HoldError::NotFound(id))?;
        if let Some(expires_at) = hold.expires_at {
            let now = Utc::now();
            if !self.bookings.claim_hold(&hold, now).await? {
                // Confirmed meanwhile by another request, lapsed, released, or called off.
                if let Some(done) = confirmed_before(self.bookings.booking(id).await?) {
                    return Ok(done);
                }
                let event = self.bookings.inventory(hold.booking.event_id).await?;
                if event.is_some_and(|e| e.cancelled.is_some()) {
                    return Err(HoldError::EventCancelled(id));
                }
                return Err(if expires_at <= now {
                    HoldError::Lapsed(id)
                } else {
                    HoldError::NotFound(id)
                });
            }
        }
        // Claimed now, or by a confirmation a crash interrupted: the booking is stored from it.
        let claimed = SeatHold {
            expires_at: None,
            ..hold
        };
        let booking = self.store_held(&claimed, trace_parent).await?;
        Ok((booking, true))
    }

    /// Releases the hold `id` for its holder or an administrator `by`: its seats go back at once.
    ///
    /// # Errors
    /// [`HoldError::NotFound`] when there is no such hold the caller may release (confirmed,
    /// released, lapsed, someone else's), or the store's failure.
    pub async fn release_hold(&self, id: BookingId, by: &Principal) -> Result<(), HoldError> {
        let hold = self
            .seat_hold(id, by)
            .await?
            .ok_or(HoldError::NotFound(id))?;
        if !self.bookings.release_hold(&hold, None).await? {
            return Err(HoldError::NotFound(id));
        }
        tracing::info!(hold_id = %id, seats = hold.booking.seats.get(), "hold released");
        Ok(())
    }

    /// Gives back the seats of every buyer's hold that lapsed by now, each once whichever replica
    /// runs this too (see [`myevents_store::BookingRepository::release_hold`]). Returns how many this call gave
    /// back. Failures are logged and left to the next run.
    pub async fn lapse_holds(&self) -> usize {
        let now = Utc::now();
        let lapsed = match self.bookings.lapsed_holds(now).await {
            Ok(lapsed) => lapsed,
            Err(error) => {
                tracing::warn!(%error, "looking for lapsed holds failed; next time");
                return 0;
            }
        };
        let mut released = 0;
        for hold in lapsed {
            match self.bookings.release_hold(&hold, Some(now)).await {
                Ok(true) => {
                    released += 1;
                    self.metrics.lapsed_holds.inc();
                    tracing::info!(hold_id = %hold.booking.id, event_id = %hold.booking.event_id,
                        seats = hold.booking.seats.get(), "hold lapsed; its seats are back on sale");
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(hold_id = %hold.booking.id, %error,
                        "giving back a lapsed hold failed; next time");
                    break;
                }
            }
        }
        released
    }
}
