//! Waitlists: buyers waiting for seats of a sold-out event, offered the seats that come back first
//! come first served (see [`myevents_store::BookingRepository::join_waitlist`] and
//! [`myevents_store::BookingRepository::offer_to_waitlists`]).

use chrono::Utc;
use myevents_domain::access::Principal;
use myevents_domain::booking::{BookingSeats, UserId, WaitlistEntry};
use myevents_domain::id::{EventId, WaitlistEntryId};
use myevents_domain::validation::ValidationError;
use myevents_store::{JoinWaitlistError, RepositoryError};

use super::{BookingService, now_seconds};

/// Join an event's waitlist, under an id the caller reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinWaitlist {
    /// The entry's id (from the idempotency key's reservation, or fresh).
    pub entry_id: WaitlistEntryId,
    /// The event.
    pub event_id: EventId,
    /// Who waits.
    pub user_id: UserId,
    /// Seats wanted, as the client sent them (validated here: 1 ..= the most per booking).
    pub seats: Option<i64>,
}

/// Why a waitlist entry was not made, shown or removed.
#[derive(Debug, thiserror::Error)]
pub enum WaitlistError {
    /// The seats wanted are not a number from 1 to the most per booking.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No inventory for this event: not announced (yet), or unknown.
    #[error("no event with id {0} is open for booking")]
    EventNotFound(EventId),
    /// The event was called off.
    #[error("event {0} was cancelled: nothing more is booked")]
    EventCancelled(EventId),
    /// The seats wanted are on sale and nobody waits: book or hold them instead.
    #[error("{remaining} seats are on sale and nobody waits: book them instead")]
    SeatsAvailable {
        /// Seats on sale.
        remaining: u32,
    },
    /// No such entry the caller may see.
    #[error("no waitlist entry with id {0}")]
    NotFound(WaitlistEntryId),
    /// Another user's entries.
    #[error("a user's waitlist entries are shown to that user and administrators only")]
    Forbidden,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

impl BookingService {
    /// Puts the caller on an event's waitlist for `seats` seats (see
    /// [`myevents_store::BookingRepository::join_waitlist`]): only while the seats cannot be had otherwise.
    /// Answers the entry with its place; a retry under the same id answers it as it is.
    ///
    /// # Errors
    /// [`WaitlistError`]: invalid seats, unknown or cancelled event, seats on sale, or the
    /// store's failure.
    pub async fn join_waitlist(
        &self,
        command: JoinWaitlist,
    ) -> Result<WaitlistEntry, WaitlistError> {
        let seats = BookingSeats::new(command.seats, self.rules.max_seats_per_booking)?.count();
        let entry = WaitlistEntry {
            id: command.entry_id,
            event_id: command.event_id,
            user_id: command.user_id,
            seats,
            joined_at: now_seconds(),
            offer: None,
            place: None,
        };
        let joined = self
            .bookings
            .join_waitlist(&entry)
            .await
            .map_err(|error| match error {
                JoinWaitlistError::EventNotFound => WaitlistError::EventNotFound(entry.event_id),
                JoinWaitlistError::EventCancelled => WaitlistError::EventCancelled(entry.event_id),
                JoinWaitlistError::SeatsAvailable { remaining } => WaitlistError::SeatsAvailable {
                    remaining: remaining.get(),
                },
                JoinWaitlistError::Repository(error) => WaitlistError::Store(error),
            })?;
        tracing::info!(entry_id = %joined.id, event_id = %joined.event_id, seats = seats.get(),
            place = joined.place, "waitlist joined");
        Ok(joined)
    }

    /// The waitlist entry `id` for its buyer or an administrator `by`.
    ///
    /// # Errors
    /// [`WaitlistError::NotFound`] when there is none the caller may see, or the store's failure.
    pub async fn waitlist_entry(
        &self,
        id: WaitlistEntryId,
        by: &Principal,
    ) -> Result<WaitlistEntry, WaitlistError> {
        self.bookings
            .waitlist_entry(id)
            .await?
            .filter(|entry| by.may_act_for(&entry.user_id))
            .ok_or(WaitlistError::NotFound(id))
    }

    /// The waitlist entries of `user`, for that user or an administrator `by`.
    ///
    /// # Errors
    /// [`WaitlistError::Forbidden`] for anyone else, or the store's failure.
    pub async fn waitlist_of_user(
        &self,
        user: &UserId,
        by: &Principal,
    ) -> Result<Vec<WaitlistEntry>, WaitlistError> {
        if !by.may_act_for(user) {
            return Err(WaitlistError::Forbidden);
        }
        Ok(self.bookings.waitlist_of_user(user).await?)
    }

    /// Takes the entry `id` off its waitlist, for its buyer or an administrator `by`; an offer it
    /// had stays a hold of its own (released or confirmed as any).
    ///
    /// # Errors
    /// [`WaitlistError::NotFound`] when there is none the caller may remove, or the store's
    /// failure.
    pub async fn leave_waitlist(
        &self,
        id: WaitlistEntryId,
        by: &Principal,
    ) -> Result<(), WaitlistError> {
        self.waitlist_entry(id, by).await?;
        if !self.bookings.leave_waitlist(id).await? {
            return Err(WaitlistError::NotFound(id));
        }
        Ok(())
    }

    /// Offers the seats on sale to the buyers waiting for them, first come first served, each as
    /// a hold in their name lapsing after [`BookingRules::hold_ttl`](super::BookingRules::hold_ttl) (see
    /// [`myevents_store::BookingRepository::offer_to_waitlists`]). Returns how many offers this call made.
    /// Failures are logged and left to the next run.
    pub async fn offer_to_waitlists(&self) -> usize {
        let now = Utc::now();
        let expires_at = self.hold_expiry();
        match self.bookings.offer_to_waitlists(now, expires_at).await {
            Ok(offered) => {
                for entry in &offered {
                    self.metrics.waitlist_offers.inc();
                    tracing::info!(entry_id = %entry.id, event_id = %entry.event_id,
                        seats = entry.seats.get(), %expires_at, "seats offered to a waiting buyer");
                }
                offered.len()
            }
            Err(error) => {
                tracing::warn!(%error, "offering seats to waitlists failed; next time");
                0
            }
        }
    }
}
