//! The booking service's repository in memory: seat inventory, seat holds and bookings.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use myevents_domain::booking::{Booking, SeatInventory, UserId, WaitlistEntry, WaitlistOffer};
use myevents_domain::id::{BookingId, EventId, ObjectId, WaitlistEntryId};
use myevents_domain::messages::OutboxMessage;
use myevents_domain::seats::SeatCount;

use super::{InMemoryOutbox, lock, page};
use crate::idempotency::new_token;
use crate::now_millis;
use crate::{
    BookingRepository, Cancellation, EventBookingsCancelled, InventoryChange, InventoryChanged,
    InventorySnapshot, JoinWaitlistError, PageRequest, PlaceBookingError, RepositoryError,
    SeatHold, Settled, with_places,
};

#[derive(Debug, Default)]
struct BookingState {
    inventory: BTreeMap<ObjectId, SeatInventory>,
    /// Cancelled events whose bookings are all cancelled, with no seat hold left.
    settled: std::collections::BTreeSet<ObjectId>,
    /// Each event's waitlist, in the order its buyers joined (places are computed on reading).
    waitlists: BTreeMap<ObjectId, Vec<WaitlistEntry>>,
    /// Each stored booking with the attempt whose hold it was stored under.
    bookings: BTreeMap<ObjectId, (Booking, String)>,
    /// Seat holds not yet settled, oldest first.
    holds: Vec<SeatHold>,
}

impl BookingState {
    /// Whether anyone waits for seats of `event` without an offer yet.
    fn anyone_waits(&self, event: EventId) -> bool {
        self.waitlists
            .get(&event.object_id())
            .is_some_and(|list| list.iter().any(|entry| entry.offer.is_none()))
    }

    /// The entry `id` with its place, if it is on a list.
    fn entry(&self, id: WaitlistEntryId) -> Option<WaitlistEntry> {
        self.waitlists
            .values()
            .find_map(|list| with_places(list).into_iter().find(|entry| entry.id == id))
    }

    fn position_of(&self, hold: &SeatHold) -> Option<usize> {
        self.holds
            .iter()
            .position(|h| h.booking.id == hold.booking.id && h.attempt == hold.attempt)
    }
}

/// Seat inventory and bookings in memory, behind one lock. Placing a booking takes the same two steps
/// as on MongoDB (hold the seats, then store the booking), each under the lock, so a booking
/// interrupted between them is found and finished here as there.
#[derive(Debug, Default)]
pub struct InMemoryBookingRepository {
    state: Mutex<BookingState>,
    outbox: InMemoryOutbox,
}

impl InMemoryBookingRepository {
    /// A repository whose messages go to `outbox`.
    pub fn new(outbox: InMemoryOutbox) -> Self {
        Self {
            state: Mutex::default(),
            outbox,
        }
    }
}

#[async_trait]
impl BookingRepository for InMemoryBookingRepository {
    async fn add_inventory(&self, inventory: &SeatInventory) -> Result<bool, RepositoryError> {
        let mut state = lock(&self.state);
        let id = inventory.event_id.object_id();
        if state.inventory.contains_key(&id) {
            return Ok(false);
        }
        state.inventory.insert(id, inventory.clone());
        Ok(true)
    }

    async fn change_inventory(
        &self,
        event_id: EventId,
        revision: u64,
        change: &InventoryChange,
    ) -> Result<InventoryChanged, RepositoryError> {
        let mut state = lock(&self.state);
        let inventory = state
            .inventory
            .entry(event_id.object_id())
            .or_insert_with(|| SeatInventory::new(event_id, String::new(), SeatCount::new(0)));
        if inventory.revision >= revision {
            return Ok(InventoryChanged::Stale(inventory.clone()));
        }
        change.apply(inventory, revision);
        Ok(InventoryChanged::Applied(inventory.clone()))
    }

    async fn cancel_event_bookings(
        &self,
        event_id: EventId,
        cancelled_at: chrono::DateTime<chrono::Utc>,
        reason: &str,
        announce: &(dyn for<'b> Fn(&'b Booking) -> OutboxMessage + Send + Sync),
    ) -> Result<EventBookingsCancelled, RepositoryError> {
        let mut state = lock(&self.state);
        let mut cancelled = Vec::new();
        for (booking, _) in state.bookings.values_mut() {
            if booking.event_id == event_id && booking.cancelled_at.is_none() {
                booking.cancelled_at = Some(cancelled_at);
                booking.cancel_reason = Some(reason.to_owned());
                self.outbox.push(&announce(booking));
                cancelled.push(booking.clone());
            }
        }
        // A buyer's hold can no longer be claimed; a reservation record can still be stored.
        let held = state
            .holds
            .iter()
            .any(|h| h.booking.event_id == event_id && h.expires_at.is_none());
        let settled = !held
            && state
                .inventory
                .get(&event_id.object_id())
                .is_some_and(|inventory| inventory.cancelled.is_some());
        if settled {
            state.settled.insert(event_id.object_id());
        }
        Ok(EventBookingsCancelled { cancelled, settled })
    }

    async fn unsettled_cancelled_events(&self) -> Result<Vec<SeatInventory>, RepositoryError> {
        let state = lock(&self.state);
        Ok(state
            .inventory
            .iter()
            .filter(|(id, inventory)| inventory.cancelled.is_some() && !state.settled.contains(*id))
            .map(|(_, inventory)| inventory.clone())
            .take(1000)
            .collect())
    }

    async fn inventory_snapshot(
        &self,
        event_id: EventId,
    ) -> Result<Option<InventorySnapshot>, RepositoryError> {
        let state = lock(&self.state);
        let Some(inventory) = state.inventory.get(&event_id.object_id()) else {
            return Ok(None);
        };
        Ok(Some(InventorySnapshot {
            inventory: inventory.clone(),
            holds: state
                .holds
                .iter()
                .filter(|hold| hold.booking.event_id == event_id)
                .map(|hold| SeatHold {
                    fresh: false,
                    remaining: inventory.remaining,
                    ..hold.clone()
                })
                .collect(),
            waitlist: state
                .waitlists
                .get(&event_id.object_id())
                .map(|list| with_places(list))
                .unwrap_or_default(),
        }))
    }

    async fn inventory(&self, event_id: EventId) -> Result<Option<SeatInventory>, RepositoryError> {
        Ok(lock(&self.state)
            .inventory
            .get(&event_id.object_id())
            .cloned())
    }

    async fn hold_seats(
        &self,
        booking: &Booking,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<SeatHold, PlaceBookingError> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let waits = state.anyone_waits(booking.event_id);
        let inventory = state
            .inventory
            .get_mut(&booking.event_id.object_id())
            .ok_or(PlaceBookingError::EventNotFound)?;
        if inventory.cancelled.is_some() {
            return Err(PlaceBookingError::EventCancelled);
        }
        let remaining_now = inventory.remaining;
        if let Some(earlier) = state.holds.iter().find(|h| h.booking.id == booking.id) {
            return Ok(SeatHold {
                fresh: false,
                remaining: remaining_now,
                ..earlier.clone()
            });
        }
        if waits {
            return Err(PlaceBookingError::SoldOut {
                remaining: remaining_now,
            });
        }
        let remaining =
            inventory
                .reserve(booking.seats)
                .map_err(|sold_out| PlaceBookingError::SoldOut {
                    remaining: sold_out.remaining,
                })?;
        let hold = SeatHold {
            booking: booking.clone(),
            attempt: new_token(),
            held_at: now_millis(),
            fresh: true,
            remaining,
            expires_at,
        };
        state.holds.push(hold.clone());
        Ok(hold)
    }

    async fn seat_hold(&self, id: BookingId) -> Result<Option<SeatHold>, RepositoryError> {
        let state = lock(&self.state);
        Ok(state
            .holds
            .iter()
            .find(|hold| hold.booking.id == id)
            .map(|hold| SeatHold {
                fresh: false,
                remaining: state
                    .inventory
                    .get(&hold.booking.event_id.object_id())
                    .map_or(SeatCount::new(0), |inventory| inventory.remaining),
                ..hold.clone()
            }))
    }

    async fn claim_hold(
        &self,
        hold: &SeatHold,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RepositoryError> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let cancelled = state
            .inventory
            .get(&hold.booking.event_id.object_id())
            .is_none_or(|inventory| inventory.cancelled.is_some());
        let Some(at) = state.position_of(hold) else {
            return Ok(false);
        };
        let held = &mut state.holds[at];
        if cancelled || held.expires_at.is_none_or(|expires| expires <= now) {
            return Ok(false);
        }
        held.expires_at = None;
        held.held_at = now;
        Ok(true)
    }

    async fn release_hold(
        &self,
        hold: &SeatHold,
        lapsed_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<bool, RepositoryError> {
        let mut state = lock(&self.state);
        let Some(at) = state.position_of(hold) else {
            return Ok(false);
        };
        let releasable = state.holds[at]
            .expires_at
            .is_some_and(|expires| lapsed_at.is_none_or(|lapsed| expires <= lapsed));
        if !releasable {
            return Ok(false);
        }
        let released = state.holds.remove(at);
        give_back(&mut state.inventory, &released.booking);
        Ok(true)
    }

    async fn join_waitlist(
        &self,
        entry: &WaitlistEntry,
    ) -> Result<WaitlistEntry, JoinWaitlistError> {
        let mut state = lock(&self.state);
        if let Some(found) = state.entry(entry.id) {
            return Ok(found);
        }
        let inventory = state
            .inventory
            .get(&entry.event_id.object_id())
            .ok_or(JoinWaitlistError::EventNotFound)?;
        if inventory.cancelled.is_some() {
            return Err(JoinWaitlistError::EventCancelled);
        }
        if inventory.remaining >= entry.seats && !state.anyone_waits(entry.event_id) {
            return Err(JoinWaitlistError::SeatsAvailable {
                remaining: inventory.remaining,
            });
        }
        state
            .waitlists
            .entry(entry.event_id.object_id())
            .or_default()
            .push(WaitlistEntry {
                offer: None,
                place: None,
                ..entry.clone()
            });
        state
            .entry(entry.id)
            .ok_or_else(|| RepositoryError::Unexpected(crate::Cause::msg("entry lost")).into())
    }

    async fn waitlist_entry(
        &self,
        id: WaitlistEntryId,
    ) -> Result<Option<WaitlistEntry>, RepositoryError> {
        Ok(lock(&self.state).entry(id))
    }

    async fn waitlist_of_user(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<WaitlistEntry>, RepositoryError> {
        let state = lock(&self.state);
        let mut entries: Vec<WaitlistEntry> = state
            .waitlists
            .values()
            .flat_map(|list| with_places(list))
            .filter(|entry| &entry.user_id == user_id)
            .collect();
        entries.sort_by_key(|entry| (entry.joined_at, entry.id));
        entries.truncate(1000);
        Ok(entries)
    }

    async fn leave_waitlist(&self, id: WaitlistEntryId) -> Result<bool, RepositoryError> {
        let mut state = lock(&self.state);
        for list in state.waitlists.values_mut() {
            if let Some(at) = list.iter().position(|entry| entry.id == id) {
                list.remove(at);
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn offer_to_waitlists(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<WaitlistEntry>, RepositoryError> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let mut offered = Vec::new();
        for (event, list) in &mut state.waitlists {
            list.retain(|entry| entry.offer.as_ref().is_none_or(|o| o.expires_at > now));
            let Some(inventory) = state.inventory.get_mut(event) else {
                continue;
            };
            if inventory.cancelled.is_some() {
                continue;
            }
            for entry in list.iter_mut().filter(|entry| entry.offer.is_none()) {
                let Ok(remaining) = inventory.reserve(entry.seats) else {
                    break;
                };
                let booking = Booking {
                    id: BookingId::generate(),
                    event_id: entry.event_id,
                    user_id: entry.user_id.clone(),
                    seats: entry.seats,
                    booked_at: now,
                    cancelled_at: None,
                    cancel_reason: None,
                };
                entry.offer = Some(WaitlistOffer {
                    hold_id: booking.id,
                    expires_at,
                });
                state.holds.push(SeatHold {
                    booking,
                    attempt: new_token(),
                    held_at: now_millis(),
                    fresh: true,
                    remaining,
                    expires_at: Some(expires_at),
                });
                offered.push(entry.clone());
            }
        }
        Ok(offered)
    }

    async fn lapsed_holds(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SeatHold>, RepositoryError> {
        let mut lapsed: Vec<SeatHold> = lock(&self.state)
            .holds
            .iter()
            .filter(|hold| hold.expires_at.is_some_and(|expires| expires <= now))
            .map(|hold| SeatHold {
                fresh: false,
                ..hold.clone()
            })
            .collect();
        lapsed.sort_by_key(|hold| hold.expires_at);
        lapsed.truncate(1000);
        Ok(lapsed)
    }

    async fn store_held_booking(
        &self,
        hold: &SeatHold,
        announce: &OutboxMessage,
    ) -> Result<Settled, RepositoryError> {
        crate::unclaimed_guard(hold)?;
        let mut state = lock(&self.state);
        let id = hold.booking.id.object_id();
        let held = state.position_of(hold);
        if let Some((stored, attempt)) = state.bookings.get(&id).cloned() {
            if attempt == hold.attempt {
                return Ok(Settled::Stored(stored));
            }
            if let Some(at) = held {
                state.holds.remove(at);
                give_back(&mut state.inventory, &hold.booking);
            }
            return Ok(Settled::AlreadyStored(stored));
        }
        if let Some(at) = held {
            state.holds.remove(at);
        }
        state
            .bookings
            .insert(id, (hold.booking.clone(), hold.attempt.clone()));
        self.outbox.push(announce);
        Ok(Settled::Stored(hold.booking.clone()))
    }

    async fn stale_holds(
        &self,
        held_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SeatHold>, RepositoryError> {
        Ok(lock(&self.state)
            .holds
            .iter()
            .filter(|hold| hold.expires_at.is_none() && hold.held_at < held_before)
            .take(1000)
            .map(|hold| SeatHold {
                fresh: false,
                ..hold.clone()
            })
            .collect())
    }

    async fn cancel_booking(
        &self,
        id: BookingId,
        cancelled_at: chrono::DateTime<chrono::Utc>,
        announce: &OutboxMessage,
    ) -> Result<Cancellation, RepositoryError> {
        let mut state = lock(&self.state);
        let Some((booking, _)) = state.bookings.get_mut(&id.object_id()) else {
            return Ok(Cancellation::NotFound);
        };
        if booking.cancelled_at.is_some() {
            return Ok(Cancellation::AlreadyCancelled(booking.clone()));
        }
        booking.cancelled_at = Some(cancelled_at);
        let booking = booking.clone();
        give_back(&mut state.inventory, &booking);
        self.outbox.push(announce);
        Ok(Cancellation::Cancelled(booking))
    }

    async fn finish_seat_returns(
        &self,
        _cancelled_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, RepositoryError> {
        // Cancelling is one write under the lock here: no return is ever left half done.
        Ok(0)
    }

    async fn booking(&self, id: BookingId) -> Result<Option<Booking>, RepositoryError> {
        Ok(lock(&self.state)
            .bookings
            .get(&id.object_id())
            .map(|(booking, _)| booking.clone()))
    }

    async fn bookings_for_event(
        &self,
        event_id: EventId,
        request: PageRequest,
    ) -> Result<Vec<Booking>, RepositoryError> {
        Ok(bookings_page(&lock(&self.state), request, |b| {
            b.event_id == event_id
        }))
    }

    async fn bookings_for_user(
        &self,
        user_id: &UserId,
        request: PageRequest,
    ) -> Result<Vec<Booking>, RepositoryError> {
        Ok(bookings_page(&lock(&self.state), request, |b| {
            &b.user_id == user_id
        }))
    }
}

/// Gives `booking`'s seats back to its event's inventory (never above its capacity).
fn give_back(inventory: &mut BTreeMap<ObjectId, SeatInventory>, booking: &Booking) {
    if let Some(inventory) = inventory.get_mut(&booking.event_id.object_id()) {
        inventory.remaining = inventory
            .remaining
            .checked_add(booking.seats)
            .map_or(inventory.capacity, |r| r.min(inventory.capacity));
    }
}

/// One page of the stored bookings that `keep` accepts.
fn bookings_page(
    state: &BookingState,
    request: PageRequest,
    keep: impl Fn(&Booking) -> bool,
) -> Vec<Booking> {
    page(&state.bookings, request, |(b, _)| keep(b))
        .into_iter()
        .map(|(booking, _)| booking)
        .collect()
}
