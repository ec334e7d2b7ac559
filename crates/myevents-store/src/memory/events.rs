//! The event service's repositories in memory: locations, and events with their inbox.

use crate::Cause;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use myevents_domain::event::Event;
use myevents_domain::id::{EventId, LocationId, ObjectId};
use myevents_domain::location::Location;
use myevents_domain::messages::OutboxMessage;
use myevents_domain::seats::SeatCount;

use super::{InMemoryOutbox, lock, page};
use crate::idempotency::chrono_duration;
use crate::{
    EventRepository, INBOX_RETENTION, InboxKey, LocationDeletion, LocationRepository, PageRequest,
    RepositoryError, SeatChange,
};

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

/// Locations in memory. One made by [`InMemoryEventRepository::locations`] shares its events'
/// lock, so a deletion and an event created at the location are one after the other.
#[derive(Debug, Default)]
pub struct InMemoryLocationRepository {
    state: Arc<Mutex<EventState>>,
    outbox: InMemoryOutbox,
}

impl InMemoryLocationRepository {
    /// A repository whose messages go to `outbox`, with no events of its own.
    pub fn new(outbox: InMemoryOutbox) -> Self {
        Self {
            state: Arc::default(),
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
        let mut state = lock(&self.state);
        let id = location.id.object_id();
        if state.deleted_locations.contains(&id) {
            return Err(RepositoryError::Conflict(Cause::msg(format!("id {id}"))));
        }
        insert_new(&mut state.locations, id, location.clone())?;
        self.outbox.push(announce);
        Ok(())
    }

    async fn get(&self, id: LocationId) -> Result<Option<Location>, RepositoryError> {
        Ok(lock(&self.state).locations.get(&id.object_id()).cloned())
    }

    async fn list(&self, request: PageRequest) -> Result<Vec<Location>, RepositoryError> {
        Ok(page(&lock(&self.state).locations, request, |_| true))
    }

    async fn update(
        &self,
        location: &Location,
        announce: &OutboxMessage,
    ) -> Result<bool, RepositoryError> {
        let mut state = lock(&self.state);
        let Some(stored) = state.locations.get_mut(&location.id.object_id()) else {
            return Ok(false);
        };
        if location.revision != stored.revision + 1 {
            return Ok(false);
        }
        *stored = location.clone();
        self.outbox.push(announce);
        Ok(true)
    }

    async fn delete(
        &self,
        id: LocationId,
        revision: u64,
        announce: &OutboxMessage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<LocationDeletion, RepositoryError> {
        let mut state = lock(&self.state);
        let key = id.object_id();
        if state.locations.get(&key).map(|l| l.revision) != Some(revision) {
            return Ok(LocationDeletion::Stale);
        }
        let upcoming = state
            .events
            .values()
            .filter(|e| e.location.id == id && e.cancelled.is_none() && e.end > now)
            .min_by_key(|e| (e.end, e.id.object_id()));
        if let Some(event) = upcoming {
            return Ok(LocationDeletion::InUse(event.id));
        }
        state.locations.remove(&key);
        state.deleted_locations.insert(key);
        self.outbox.push(announce);
        Ok(LocationDeletion::Deleted)
    }
}

/// The locations, the events and the inbox of the messages applied to them, changed together
/// under one lock.
#[derive(Debug, Default)]
struct EventState {
    locations: BTreeMap<ObjectId, Location>,
    /// The ids of deleted locations, never reused.
    deleted_locations: BTreeSet<ObjectId>,
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
    state: Arc<Mutex<EventState>>,
    outbox: InMemoryOutbox,
}

impl InMemoryEventRepository {
    /// A repository whose messages go to `outbox`.
    pub fn new(outbox: InMemoryOutbox) -> Self {
        Self {
            state: Arc::default(),
            outbox,
        }
    }

    /// The locations of these events: one store, so that a location with events to come cannot
    /// be deleted (see [`LocationRepository::delete`]).
    pub fn locations(&self) -> InMemoryLocationRepository {
        InMemoryLocationRepository {
            state: Arc::clone(&self.state),
            outbox: self.outbox.clone(),
        }
    }
}

#[async_trait]
impl EventRepository for InMemoryEventRepository {
    async fn insert(&self, event: &Event, announce: &OutboxMessage) -> Result<(), RepositoryError> {
        let mut state = lock(&self.state);
        let location = event.location.id;
        if state.deleted_locations.contains(&location.object_id()) {
            return Err(RepositoryError::Gone(Cause::msg(format!(
                "location {location}"
            ))));
        }
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
        let EventState { events, inbox, .. } = &mut *state;
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

    async fn update(
        &self,
        event: &Event,
        announce: &OutboxMessage,
    ) -> Result<bool, RepositoryError> {
        let mut state = lock(&self.state);
        let Some(stored) = state.events.get_mut(&event.id.object_id()) else {
            return Ok(false);
        };
        if event.revision != stored.revision + 1 {
            return Ok(false);
        }
        *stored = Event {
            seats_booked: stored.seats_booked,
            ..event.clone()
        };
        self.outbox.push(announce);
        Ok(true)
    }
}
