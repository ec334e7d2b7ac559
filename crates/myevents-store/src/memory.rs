//! In-memory adapters: every port kept in process memory behind a lock. Nothing survives a restart;
//! they serve the embedded mode and unit tests, and pass the same conformance suite as the real adapters.
//! Repositories built with one [`InMemoryOutbox`] put their messages in it while they hold their own
//! lock, so a state change and its message appear together.

use crate::Cause;
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use myevents_domain::booking::{Booking, SeatInventory, UserId};
use myevents_domain::event::Event;
use myevents_domain::id::{BookingId, EventId, LocationId, ObjectId};
use myevents_domain::location::Location;
use myevents_domain::seats::SeatCount;

use myevents_domain::messages::OutboxMessage;

use crate::idempotency::{chrono_duration, new_token};
use crate::now_millis;
use crate::{
    Backlog, Begin, BookingRepository, Cancellation, EventRepository, INBOX_RETENTION,
    IdempotencyRepository, IdempotencyScope, IdempotentRequest, InboxKey, LocationRepository,
    Outbox, PageRequest, PlaceBookingError, RepositoryError, SeatChange, SeatHold, Settled,
    StoredResponse,
};

/// Pending outbox messages in memory, by message id (UUID v7: stored order), and the relay claim.
/// Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct InMemoryOutbox {
    state: std::sync::Arc<Mutex<OutboxState>>,
}

#[derive(Debug, Default)]
struct OutboxState {
    pending: BTreeMap<String, OutboxMessage>,
    /// The relay holding the claim and until when.
    claim: Option<(String, std::time::Instant)>,
}

impl InMemoryOutbox {
    fn push(&self, message: &OutboxMessage) {
        lock(&self.state)
            .pending
            .insert(message.id.clone(), message.clone());
    }
}

#[async_trait]
impl Outbox for InMemoryOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, RepositoryError> {
        Ok(lock(&self.state)
            .pending
            .values()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn mark_published(&self, ids: &[String]) -> Result<(), RepositoryError> {
        let mut state = lock(&self.state);
        for id in ids {
            state.pending.remove(id);
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, RepositoryError> {
        let state = lock(&self.state);
        Ok(Backlog {
            pending: u64::try_from(state.pending.len()).unwrap_or(u64::MAX),
            oldest: state.pending.values().next().map(|m| m.occurred_at),
        })
    }

    async fn claim(&self, relay: &str, lease: Duration) -> Result<bool, RepositoryError> {
        let now = std::time::Instant::now();
        let mut state = lock(&self.state);
        let free = match &state.claim {
            Some((holder, until)) => holder == relay || *until <= now,
            None => true,
        };
        if free {
            state.claim = Some((relay.to_owned(), now + lease));
        }
        Ok(free)
    }

    async fn release(&self, relay: &str) -> Result<(), RepositoryError> {
        let mut state = lock(&self.state);
        if state
            .claim
            .as_ref()
            .is_some_and(|(holder, _)| holder == relay)
        {
            state.claim = None;
        }
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the maps consistent (every write is one insert), so the
    // data is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The items of one page, in id order, among those that `keep` accepts.
fn page<T: Clone>(
    map: &BTreeMap<ObjectId, T>,
    request: PageRequest,
    keep: impl Fn(&T) -> bool,
) -> Vec<T> {
    let lower = request.after.map_or(Bound::Unbounded, Bound::Excluded);
    map.range((lower, Bound::Unbounded))
        .map(|(_, v)| v)
        .filter(|v| keep(v))
        .take(request.limit)
        .cloned()
        .collect()
}

fn insert_new<T>(
    map: &mut BTreeMap<ObjectId, T>,
    id: ObjectId,
    value: T,
) -> Result<(), RepositoryError> {
    if map.contains_key(&id) {
        return Err(RepositoryError::Conflict(Cause::msg(format!("id {id}"))));
    }
    map.insert(id, value);
    Ok(())
}

/// Locations in memory.
#[derive(Debug, Default)]
pub struct InMemoryLocationRepository {
    locations: Mutex<BTreeMap<ObjectId, Location>>,
    outbox: InMemoryOutbox,
}

impl InMemoryLocationRepository {
    /// A repository whose messages go to `outbox`.
    pub fn new(outbox: InMemoryOutbox) -> Self {
        Self {
            locations: Mutex::default(),
            outbox,
        }
    }
}

#[async_trait]
impl LocationRepository for InMemoryLocationRepository {
    async fn insert(
        &self,
        location: &Location,
        announce: &OutboxMessage,
    ) -> Result<(), RepositoryError> {
        let mut locations = lock(&self.locations);
        insert_new(&mut locations, location.id.object_id(), location.clone())?;
        self.outbox.push(announce);
        Ok(())
    }

    async fn get(&self, id: LocationId) -> Result<Option<Location>, RepositoryError> {
        Ok(lock(&self.locations).get(&id.object_id()).cloned())
    }

    async fn list(&self, request: PageRequest) -> Result<Vec<Location>, RepositoryError> {
        Ok(page(&lock(&self.locations), request, |_| true))
    }
}

/// The events and the inbox of the messages applied to them, changed together under one lock.
#[derive(Debug, Default)]
struct EventState {
    events: BTreeMap<ObjectId, Event>,
    inbox: Inbox,
}

/// Inbox keys with the time each was recorded. Keys older than [`INBOX_RETENTION`] are swept whenever
/// the number held has doubled since the last sweep (amortised constant time per message).
#[derive(Debug, Default)]
struct Inbox {
    received: HashMap<(String, String), chrono::DateTime<chrono::Utc>>,
    sweep_at: usize,
}

impl Inbox {
    /// Fewest records before the first sweep.
    const FIRST_SWEEP: usize = 1024;

    fn contains(&self, key: InboxKey<'_>) -> bool {
        // Owned keys: a lookup by borrowed pair would need a custom `Borrow`; messages are small.
        self.received
            .contains_key(&(key.consumer.to_owned(), key.message_id.to_owned()))
    }

    fn record(&mut self, key: InboxKey<'_>, now: chrono::DateTime<chrono::Utc>) {
        if self.received.len() >= self.sweep_at.max(Self::FIRST_SWEEP) {
            let oldest = now - chrono_duration(INBOX_RETENTION);
            self.received.retain(|_, at| *at > oldest);
            self.sweep_at = 2 * self.received.len();
        }
        self.received
            .insert((key.consumer.to_owned(), key.message_id.to_owned()), now);
    }
}

/// Events in memory, with the inbox of the messages applied to them.
#[derive(Debug, Default)]
pub struct InMemoryEventRepository {
    state: Mutex<EventState>,
    outbox: InMemoryOutbox,
}

impl InMemoryEventRepository {
    /// A repository whose messages go to `outbox`.
    pub fn new(outbox: InMemoryOutbox) -> Self {
        Self {
            state: Mutex::default(),
            outbox,
        }
    }
}

#[async_trait]
impl EventRepository for InMemoryEventRepository {
    async fn insert(&self, event: &Event, announce: &OutboxMessage) -> Result<(), RepositoryError> {
        let mut state = lock(&self.state);
        insert_new(&mut state.events, event.id.object_id(), event.clone())?;
        self.outbox.push(announce);
        Ok(())
    }

    async fn get(&self, id: EventId) -> Result<Option<Event>, RepositoryError> {
        Ok(lock(&self.state).events.get(&id.object_id()).cloned())
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<Event>, RepositoryError> {
        Ok(lock(&self.state)
            .events
            .values()
            .find(|event| event.name == name)
            .cloned())
    }

    async fn record_booked_seats(
        &self,
        id: EventId,
        key: InboxKey<'_>,
        seats: i64,
    ) -> Result<SeatChange, RepositoryError> {
        let mut state = lock(&self.state);
        let EventState { events, inbox } = &mut *state;
        let Some(event) = events.get_mut(&id.object_id()) else {
            return Ok(SeatChange::UnknownEvent);
        };
        if inbox.contains(key) {
            return Ok(SeatChange::Duplicate);
        }
        let booked = i64::from(event.seats_booked.get()).saturating_add(seats);
        event.seats_booked = SeatCount::new(u32::try_from(booked.max(0)).unwrap_or(u32::MAX));
        inbox.record(key, chrono::Utc::now());
        Ok(SeatChange::Applied)
    }

    async fn list(&self, request: PageRequest) -> Result<Vec<Event>, RepositoryError> {
        Ok(page(&lock(&self.state).events, request, |_| true))
    }
}

#[derive(Debug, Default)]
struct BookingState {
    inventory: BTreeMap<ObjectId, SeatInventory>,
    /// Each stored booking with the attempt whose hold it was stored under.
    bookings: BTreeMap<ObjectId, (Booking, String)>,
    /// Seat holds not yet settled, oldest first.
    holds: Vec<SeatHold>,
}

impl BookingState {
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

    async fn inventory(&self, event_id: EventId) -> Result<Option<SeatInventory>, RepositoryError> {
        Ok(lock(&self.state)
            .inventory
            .get(&event_id.object_id())
            .cloned())
    }

    async fn hold_seats(&self, booking: &Booking) -> Result<SeatHold, PlaceBookingError> {
        let mut guard = lock(&self.state);
        let state = &mut *guard;
        let inventory = state
            .inventory
            .get_mut(&booking.event_id.object_id())
            .ok_or(PlaceBookingError::EventNotFound)?;
        let remaining_now = inventory.remaining;
        if let Some(earlier) = state.holds.iter().find(|h| h.booking.id == booking.id) {
            return Ok(SeatHold {
                fresh: false,
                remaining: remaining_now,
                ..earlier.clone()
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
        };
        state.holds.push(hold.clone());
        Ok(hold)
    }

    async fn store_held_booking(
        &self,
        hold: &SeatHold,
        announce: &OutboxMessage,
    ) -> Result<Settled, RepositoryError> {
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
            .filter(|hold| hold.held_at < held_before)
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

#[derive(Debug, Clone)]
struct KeyRecord {
    fingerprint: String,
    resource_id: String,
    token: String,
    locked_until: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    response: Option<StoredResponse>,
}

/// Idempotency keys in memory (they do not survive a restart, as nothing here does). Expired keys
/// are removed in a sweep whenever the number of keys has doubled since the last one (amortised
/// constant time per key), so memory follows the keys within their time to live, as the MongoDB
/// adapter's TTL index does.
#[derive(Debug, Default)]
pub struct InMemoryIdempotencyRepository {
    keys: Mutex<IdempotencyKeys>,
}

#[derive(Debug, Default)]
struct IdempotencyKeys {
    records: HashMap<IdempotencyScope, KeyRecord>,
    /// Sweep expired records once this many are held.
    sweep_at: usize,
}

impl IdempotencyKeys {
    /// Fewest records before the first sweep.
    const FIRST_SWEEP: usize = 1024;

    fn insert(
        &mut self,
        scope: IdempotencyScope,
        record: KeyRecord,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        if self.records.len() >= self.sweep_at.max(Self::FIRST_SWEEP) {
            self.records.retain(|_, r| r.expires_at > now);
            self.sweep_at = 2 * self.records.len();
        }
        self.records.insert(scope, record);
    }

    /// How many keys are held (expired ones not yet swept included).
    fn len(&self) -> usize {
        self.records.len()
    }
}

impl InMemoryIdempotencyRepository {
    /// How many keys are held now, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        lock(&self.keys).len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl IdempotencyRepository for InMemoryIdempotencyRepository {
    async fn begin(
        &self,
        scope: &IdempotencyScope,
        request: &IdempotentRequest,
    ) -> Result<Begin, RepositoryError> {
        let mut keys = lock(&self.keys);
        let fresh = || KeyRecord {
            fingerprint: request.fingerprint.clone(),
            resource_id: request.resource_id.clone(),
            token: new_token(),
            locked_until: request.now + chrono_duration(request.lease),
            expires_at: request.now + chrono_duration(request.ttl),
            response: None,
        };
        let record = match keys.records.get_mut(scope) {
            Some(record) if record.expires_at > request.now => record,
            _ => {
                let record = fresh();
                let started = Begin::Started {
                    token: record.token.clone(),
                    resource_id: record.resource_id.clone(),
                    resumed: false,
                };
                keys.insert(scope.clone(), record, request.now);
                return Ok(started);
            }
        };
        if record.fingerprint != request.fingerprint {
            return Ok(Begin::Mismatch);
        }
        if let Some(response) = &record.response {
            return Ok(Begin::Completed(response.clone()));
        }
        if record.locked_until > request.now {
            return Ok(Begin::InFlight);
        }
        record.token = new_token();
        record.locked_until = request.now + chrono_duration(request.lease);
        Ok(Begin::Started {
            token: record.token.clone(),
            resource_id: record.resource_id.clone(),
            resumed: true,
        })
    }

    async fn complete(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        response: &StoredResponse,
    ) -> Result<bool, RepositoryError> {
        let mut keys = lock(&self.keys);
        match keys.records.get_mut(scope) {
            Some(record) if record.token == token && record.response.is_none() => {
                record.response = Some(response.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn renew(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RepositoryError> {
        let mut keys = lock(&self.keys);
        match keys.records.get_mut(scope) {
            Some(record) if record.token == token && record.response.is_none() => {
                record.locked_until = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, scope: &IdempotencyScope, token: &str) -> Result<(), RepositoryError> {
        let mut keys = lock(&self.keys);
        if let Some(record) = keys.records.get_mut(scope)
            && record.token == token
            && record.response.is_none()
        {
            record.locked_until = chrono::DateTime::<chrono::Utc>::MIN_UTC;
        }
        Ok(())
    }
}

#[cfg(test)]
mod idempotency_sweep_tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn expired_keys_are_swept_so_memory_follows_the_live_keys() {
        let repository = InMemoryIdempotencyRepository::default();
        let start = chrono::Utc::now();
        let request = |at: chrono::DateTime<chrono::Utc>| IdempotentRequest {
            fingerprint: "f".to_owned(),
            resource_id: "r".to_owned(),
            now: at,
            ttl: Duration::from_secs(2),
            lease: Duration::from_secs(1),
        };
        // Five batches of 1,000 keys, each batch after the previous one expired.
        for batch in 0..5i64 {
            let at = start + chrono::TimeDelta::seconds(10 * batch);
            for i in 0..1000 {
                let scope = IdempotencyScope {
                    user: "u".to_owned(),
                    key: format!("{batch}-{i}"),
                };
                repository.begin(&scope, &request(at)).await.expect("begin");
            }
            assert!(
                repository.len() <= 2048,
                "batch {batch}: {} keys held",
                repository.len()
            );
        }
    }
}
