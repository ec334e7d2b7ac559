//! Bookings and the booking service's seat inventory.

use chrono::{DateTime, Utc};

use crate::cancellation::EventCancellation;
use crate::id::{BookingId, EventId};
use crate::seats::SeatCount;
use crate::validation::ValidationError;

/// Longest accepted user id, in characters.
pub const MAX_USER_ID_CHARS: usize = 128;

/// Who booked: the user id an API gateway put in `X-User-Id`, or `anonymous`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserId(String);

impl UserId {
    /// The user of requests that name none.
    pub fn anonymous() -> Self {
        Self("anonymous".to_owned())
    }

    /// Validates a user id as the `X-User-Id` header gives it: see [`UserId::parse_as`].
    ///
    /// # Errors
    /// [`ValidationError`] on the field `X-User-Id`.
    pub fn parse(text: &str) -> Result<Self, ValidationError> {
        Self::parse_as(text, "X-User-Id")
    }

    /// Validates a user id given as `field` (a header, a path parameter): 1 to
    /// [`MAX_USER_ID_CHARS`] characters, no control characters, no leading or trailing white
    /// space.
    ///
    /// # Errors
    /// [`ValidationError`] on `field`.
    pub fn parse_as(text: &str, field: &str) -> Result<Self, ValidationError> {
        let broken = if text.is_empty() || text.trim() != text {
            "must not be empty or start or end with white space".to_owned()
        } else if text.chars().count() > MAX_USER_ID_CHARS {
            format!("must have at most {MAX_USER_ID_CHARS} characters")
        } else if text.chars().any(char::is_control) {
            "must not contain control characters".to_owned()
        } else {
            return Ok(Self(text.to_owned()));
        };
        Err(ValidationError::field(field, broken))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Seats asked for in one booking: at least 1, at most a configured per-booking maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BookingSeats(SeatCount);

impl BookingSeats {
    /// Validates the requested seats against `max_per_booking` (seats).
    ///
    /// # Errors
    /// [`ValidationError`] on the field `seats` when it is missing, below 1 or above the maximum.
    pub fn new(requested: Option<i64>, max_per_booking: u32) -> Result<Self, ValidationError> {
        let Some(requested) = requested else {
            return Err(ValidationError::field("seats", "is required"));
        };
        if requested < 1 {
            return Err(ValidationError::field("seats", "must be at least 1"));
        }
        match u32::try_from(requested) {
            Ok(seats) if seats <= max_per_booking => Ok(Self(SeatCount::new(seats))),
            _ => Err(ValidationError::field(
                "seats",
                format!("must be at most {max_per_booking} per booking"),
            )),
        }
    }

    /// The number of seats.
    pub fn count(self) -> SeatCount {
        self.0
    }
}

/// A confirmed booking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Booking {
    /// Its id.
    pub id: BookingId,
    /// The booked event.
    pub event_id: EventId,
    /// Who booked.
    pub user_id: UserId,
    /// Seats taken (at least 1).
    pub seats: SeatCount,
    /// When it was booked, UTC (whole seconds on the HTTP wire).
    pub booked_at: DateTime<Utc>,
    /// When it was cancelled, if it was; its seats are then back on sale, unless its event was
    /// cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Why it was cancelled when its buyer did not cancel it: [`EVENT_CANCELLED_REASON`] and the
    /// organiser's reason, when its event was called off. `None` for a booking its buyer (or an
    /// administrator) cancelled, and for one that is not cancelled.
    pub cancel_reason: Option<String>,
}

/// What a booking's [`Booking::cancel_reason`] starts with when its event was called off; the
/// organiser's reason follows after `": "`, when one was given.
pub const EVENT_CANCELLED_REASON: &str = "the event was cancelled";

/// The cancellation reason of the bookings of an event called off for `reason` (see
/// [`EVENT_CANCELLED_REASON`]).
pub fn event_cancelled_reason(reason: &str) -> String {
    if reason.is_empty() {
        EVENT_CANCELLED_REASON.to_owned()
    } else {
        format!("{EVENT_CANCELLED_REASON}: {reason}")
    }
}

/// The booking service's copy of an event: what it learned from `eventCreated` and the changes
/// after it (`eventUpdated`, `eventCancelled`), plus the seats that remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatInventory {
    /// The event.
    pub event_id: EventId,
    /// Its name, for logs and listings.
    pub event_name: String,
    /// Seats on sale in all.
    pub capacity: SeatCount,
    /// Seats not yet booked; never more than `capacity`, never below zero.
    pub remaining: SeatCount,
    /// The event's organiser (from `eventCreated`), who alone with administrators may list its
    /// bookings; `None` when the announcement named none.
    pub organiser: Option<UserId>,
    /// The event's revision this copy holds (see `Event::revision`): a change message of a revision
    /// not above it is one applied already, or older than one applied.
    pub revision: u64,
    /// When and why the event was called off (the organiser's reason); then nothing more is
    /// booked.
    pub cancelled: Option<EventCancellation>,
}

impl SeatInventory {
    /// A fresh inventory with every seat remaining, of an event without a known organiser.
    pub fn new(event_id: EventId, event_name: String, capacity: SeatCount) -> Self {
        Self {
            event_id,
            event_name,
            capacity,
            remaining: capacity,
            organiser: None,
            revision: 0,
            cancelled: None,
        }
    }

    /// Seats booked or held: capacity minus remaining.
    pub fn taken(&self) -> SeatCount {
        self.capacity
            .checked_sub(self.remaining)
            .unwrap_or(SeatCount::new(0))
    }

    /// Sets the capacity to `capacity`, moving the remaining seats by the difference, but never
    /// below the seats taken: a capacity below them becomes the seats taken, with none remaining.
    pub fn resize(&mut self, capacity: SeatCount) {
        let taken = self.taken();
        self.capacity = capacity.max(taken);
        self.remaining = self
            .capacity
            .checked_sub(taken)
            .unwrap_or(SeatCount::new(0));
    }

    /// The same inventory, of an event `organiser` organises.
    #[must_use]
    pub fn organised_by(mut self, organiser: Option<UserId>) -> Self {
        self.organiser = organiser;
        self
    }

    /// Takes `seats` from the remaining seats.
    ///
    /// # Errors
    /// [`SoldOut`] with the seats that remain when fewer than `seats` remain; nothing changes then.
    pub fn reserve(&mut self, seats: SeatCount) -> Result<SeatCount, SoldOut> {
        let remaining = self.remaining.checked_sub(seats).ok_or(SoldOut {
            remaining: self.remaining,
        })?;
        self.remaining = remaining;
        Ok(remaining)
    }
}

/// A buyer waiting for seats of a sold-out event: seats that come back (a cancelled booking, a
/// lapsed or released hold, a grown capacity) are offered to the waiting buyers first come, first
/// served, each offer a hold in the buyer's name that lapses like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitlistEntry {
    /// Its id.
    pub id: crate::id::WaitlistEntryId,
    /// The event waited for.
    pub event_id: EventId,
    /// Who waits.
    pub user_id: UserId,
    /// Seats wanted (at least 1, at most the most per booking): offered all together or not at all.
    pub seats: SeatCount,
    /// When the buyer asked to join, UTC (whole seconds on the wire). The offers follow the order
    /// in which the store took the entries, which the clocks of concurrent requests may not show.
    pub joined_at: DateTime<Utc>,
    /// The offer made, once seats came back for it.
    pub offer: Option<WaitlistOffer>,
    /// The entry's place among those still waiting (1: next to be offered seats); `None` once it
    /// has an offer.
    pub place: Option<u32>,
}

/// Seats offered to a waiting buyer: a hold in their name (see `BookingService::hold`), confirmed
/// into a booking or left to lapse like any other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitlistOffer {
    /// The hold (and the booking it becomes once confirmed).
    pub hold_id: BookingId,
    /// When the hold lapses unless confirmed, UTC.
    pub expires_at: DateTime<Utc>,
}

/// Fewer seats remain than were asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("only {remaining} seats remain")]
pub struct SoldOut {
    /// Seats that remain.
    pub remaining: SeatCount,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_must_be_between_one_and_the_maximum() {
        assert!(BookingSeats::new(Some(0), 10).is_err());
        assert!(BookingSeats::new(Some(-3), 10).is_err());
        assert!(BookingSeats::new(Some(11), 10).is_err());
        assert!(BookingSeats::new(None, 10).is_err());
        assert_eq!(
            BookingSeats::new(Some(10), 10).map(BookingSeats::count),
            Ok(SeatCount::new(10))
        );
    }

    #[test]
    fn reserving_never_goes_below_zero() {
        let mut inv = SeatInventory::new(EventId::generate(), "x".into(), SeatCount::new(3));
        assert_eq!(inv.reserve(SeatCount::new(2)), Ok(SeatCount::new(1)));
        assert_eq!(
            inv.reserve(SeatCount::new(2)),
            Err(SoldOut {
                remaining: SeatCount::new(1)
            })
        );
        assert_eq!(inv.remaining, SeatCount::new(1));
    }

    #[test]
    fn resizing_moves_the_remaining_seats_and_never_below_the_seats_taken() {
        let mut inv = SeatInventory::new(EventId::generate(), "x".into(), SeatCount::new(10));
        inv.reserve(SeatCount::new(6)).expect("seats");
        inv.resize(SeatCount::new(15));
        assert_eq!(
            (inv.capacity, inv.remaining),
            (SeatCount::new(15), SeatCount::new(9))
        );
        inv.resize(SeatCount::new(8));
        assert_eq!(
            (inv.capacity, inv.remaining),
            (SeatCount::new(8), SeatCount::new(2))
        );
        inv.resize(SeatCount::new(2));
        assert_eq!(
            (inv.capacity, inv.remaining),
            (SeatCount::new(6), SeatCount::new(0))
        );
        assert_eq!(inv.taken(), SeatCount::new(6));
    }

    #[test]
    fn user_ids_are_checked() {
        assert!(UserId::parse("alice").is_ok());
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse(" bob").is_err());
        assert!(UserId::parse("a\u{0}b").is_err());
        assert!(UserId::parse(&"x".repeat(129)).is_err());
    }
}
