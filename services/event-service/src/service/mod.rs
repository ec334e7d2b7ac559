//! The event service's use cases, between its inbound adapters (HTTP handlers, the `eventBooked` /
//! `bookingCancelled` consumer) and its store: creating locations and events with the messages that
//! announce them, changing and cancelling events, renaming, extending and deleting locations
//! (`locations`), and keeping each event's booked seats, in domain
//! terms only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use myevents_domain::access::Principal;
use myevents_domain::event::{ChangeRefused, Event, EventDraft, EventPatch, check_reason};
use myevents_domain::id::{EventId, LocationId};
use myevents_domain::location::{Location, LocationDraft};
use myevents_domain::messages::{
    DomainEvent, EventCancelled, EventCreated, EventUpdated, LocationCreated, OutboxMessage,
};
use myevents_domain::validation::ValidationError;
use myevents_messaging::outbox::OutboxWaker;
use myevents_store::{
    EventRepository, InboxKey, LocationRepository, PageRequest, RepositoryError, SeatChange,
};

mod locations;

pub use locations::{ChangeLocation, LocationChange, LocationChangeError};

/// Create a location under an id the caller reserved.
#[derive(Debug, Clone)]
pub struct CreateLocation {
    /// The location's id (from the idempotency key's reservation, or fresh).
    pub id: LocationId,
    /// Whether an earlier attempt under this id was interrupted: then the location it may have
    /// stored is the answer.
    pub resumed: bool,
    /// The location as the client described it (validated here).
    pub draft: LocationDraft,
    /// Who asks: an organiser (see [`Principal::is_organiser`]).
    pub by: Principal,
    /// The W3C `traceparent` the `locationCreated` message continues.
    pub trace_parent: Option<String>,
}

/// Where an event takes place.
#[derive(Debug, Clone)]
pub enum EventLocation {
    /// A stored location, by id.
    Stored(LocationId),
    /// A new location described with the event, stored with it under the reserved location id.
    New(LocationDraft),
    /// The client named none.
    Missing,
}

/// Create an event under ids the caller reserved.
#[derive(Debug, Clone)]
pub struct CreateEvent {
    /// The event's id and the id of the location it may describe inline.
    pub ids: (EventId, LocationId),
    /// Whether an earlier attempt under these ids was interrupted: then what it stored is reused.
    pub resumed: bool,
    /// The event as the client described it (validated here).
    pub draft: EventDraft,
    /// Its location.
    pub location: EventLocation,
    /// Who asks: an organiser (see [`Principal::is_organiser`]).
    pub by: Principal,
    /// The W3C `traceparent` the messages continue.
    pub trace_parent: Option<String>,
}

/// Why a location or an event was not created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// The input breaks a rule (one entry per field).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The caller does not hold the organiser role.
    #[error("creating locations and events needs the organiser role")]
    Forbidden,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

/// What an organiser changes in an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventChange {
    /// Edit its name, times or capacity (announced as `eventUpdated`).
    Edit(EventPatch),
    /// Call it off, for this reason (may be empty; announced as `eventCancelled`). Cancelling a
    /// cancelled event answers it as it is.
    Cancel(String),
}

/// Change an event on behalf of a caller.
#[derive(Debug, Clone)]
pub struct ChangeEvent {
    /// The event.
    pub id: EventId,
    /// The change.
    pub change: EventChange,
    /// Who asks: the event's organiser or an administrator (see [`Principal::may_manage_event`]).
    pub by: Principal,
    /// The W3C `traceparent` the message continues.
    pub trace_parent: Option<String>,
}

/// Why an event was not changed.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// No event with this id.
    #[error("no event with id {0}")]
    NotFound(EventId),
    /// The caller is neither the event's organiser nor an administrator.
    #[error("an event is changed by the organiser who created it and administrators only")]
    Forbidden,
    /// The caller's copy of the event is not the stored one (`If-Match`).
    #[error("the event changed since the copy the request names (If-Match): read it again")]
    Stale,
    /// The change breaks a rule: invalid fields, a cancelled event, a capacity below the seats
    /// booked.
    #[error(transparent)]
    Refused(#[from] ChangeRefused),
    /// Other changes of the event kept coming first; nothing was changed.
    #[error("the event was changed by others {0} times while this change was tried: try again")]
    Contended(usize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

/// Now, in whole seconds (the wire's times are Unix seconds, so what is stored is what is shown).
fn now_in_whole_seconds() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}

/// How often a change is tried over a fresh read when another change of the same event came first.
const CHANGE_ATTEMPTS: usize = 5;

/// The event service's use cases. Cheap to clone; clones share the count of changes.
#[derive(Clone)]
pub struct EventService {
    events: Arc<dyn EventRepository>,
    locations: Arc<dyn LocationRepository>,
    waker: OutboxWaker,
    changes: Arc<AtomicU64>,
}

impl EventService {
    /// The use cases over the repositories; every write that stores a message wakes the relay.
    pub fn new(
        events: Arc<dyn EventRepository>,
        locations: Arc<dyn LocationRepository>,
        waker: OutboxWaker,
    ) -> Self {
        Self {
            events,
            locations,
            waker,
            changes: Arc::default(),
        }
    }

    /// How many changes this process has made to the events and locations the reads show (writes,
    /// and seats counted from consumed messages): it grows after each one, never shrinks. Readers
    /// keep an answer only while it has not moved (see `myevents_http::cache`).
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Counts a change (after it was stored).
    fn changed(&self) {
        self.changes.fetch_add(1, Ordering::Release);
    }

    /// Stores a validated location with its `locationCreated`, and wakes the relay.
    async fn store_location(
        &self,
        location: &Location,
        trace_parent: Option<String>,
    ) -> Result<(), RepositoryError> {
        let announce = OutboxMessage::new(DomainEvent::LocationCreated(
            LocationCreated::from_location(location),
        ))
        .in_trace(trace_parent);
        self.locations.insert(location, &announce).await?;
        self.changed();
        self.waker.wake();
        Ok(())
    }

    /// Creates a location and announces it (`locationCreated`), atomically. A resumed command
    /// answers the location an interrupted attempt stored, if any.
    ///
    /// # Errors
    /// [`CreateError`]: a caller without the organiser role, an invalid location, or the store's
    /// failure.
    pub async fn create_location(&self, command: CreateLocation) -> Result<Location, CreateError> {
        if !command.by.is_organiser() {
            return Err(CreateError::Forbidden);
        }
        if command.resumed
            && let Some(existing) = self.locations.get(command.id).await?
        {
            return Ok(existing);
        }
        let mut location = command.draft.validate(command.id, "")?;
        location.organiser = Some(command.by.user().clone());
        self.store_location(&location, command.trace_parent).await?;
        Ok(location)
    }

    /// Creates an event — and the location it describes, if new — and announces them
    /// (`locationCreated`, `eventCreated`). A resumed command reuses what an interrupted attempt
    /// stored.
    ///
    /// # Errors
    /// [`CreateError`]: a caller without the organiser role, an invalid event, a missing or unknown
    /// location, or the store's failure.
    pub async fn create_event(&self, command: CreateEvent) -> Result<Event, CreateError> {
        if !command.by.is_organiser() {
            return Err(CreateError::Forbidden);
        }
        let ((event_id, location_id), resumed) = (command.ids, command.resumed);
        if resumed && let Some(existing) = self.events.get(event_id).await? {
            return Ok(existing);
        }
        let (location, is_new) = match command.location {
            EventLocation::Missing => {
                return Err(ValidationError::field(
                    "Location",
                    "is required: give Location.ID of a stored location, or a whole location",
                )
                .into());
            }
            EventLocation::Stored(id) => {
                let stored = self.locations.get(id).await?.ok_or_else(|| {
                    ValidationError::field("Location.ID", format!("no location with id {id}"))
                })?;
                (stored, false)
            }
            EventLocation::New(draft) => (draft.validate(location_id, "Location.")?, true),
        };
        let mut event = command.draft.validate(event_id, location)?;
        event.organiser = Some(command.by.user().clone());
        if is_new {
            event.location.organiser.clone_from(&event.organiser);
        }
        let stored_before = resumed && self.locations.get(location_id).await?.is_some();
        if is_new && !stored_before {
            self.store_location(&event.location, command.trace_parent.clone())
                .await?;
        }
        let announce =
            OutboxMessage::new(DomainEvent::EventCreated(EventCreated::from_event(&event)))
                .in_trace(command.trace_parent);
        self.events
            .insert(&event, &announce)
            .await
            .map_err(|error| match error {
                // Deleted between the read above and the insert.
                RepositoryError::Gone(_) => CreateError::Invalid(ValidationError::field(
                    "Location.ID",
                    format!("no location with id {}", event.location.id),
                )),
                other => CreateError::Store(other),
            })?;
        self.changed();
        self.waker.wake();
        Ok(event)
    }

    /// Changes an event (see [`EventChange`]) and announces the change, atomically, when
    /// `precondition` holds for the stored event (the caller's copy is the stored one: `If-Match`;
    /// `|_| true` for none). Another change stored between this one's read and write makes it start
    /// over from a fresh read, so no change overwrites another unseen. Answers the event as
    /// changed.
    ///
    /// # Errors
    /// [`ChangeError`]: no such event, a caller who may not change it, a stale copy, a refused
    /// change, contention, or the store's failure.
    pub async fn change_event(
        &self,
        command: ChangeEvent,
        precondition: impl Fn(&Event) -> bool + Send,
    ) -> Result<Event, ChangeError> {
        let id = command.id;
        for _ in 0..CHANGE_ATTEMPTS {
            let stored = self
                .events
                .get(id)
                .await?
                .ok_or(ChangeError::NotFound(id))?;
            if !command.by.may_manage_event(stored.organiser.as_ref()) {
                return Err(ChangeError::Forbidden);
            }
            if !precondition(&stored) {
                return Err(ChangeError::Stale);
            }
            let (changed, message) = match &command.change {
                EventChange::Edit(patch) => {
                    let changed = stored.patched(patch.clone())?;
                    let message = DomainEvent::EventUpdated(EventUpdated::from_event(&changed));
                    (changed, message)
                }
                EventChange::Cancel(reason) if stored.cancelled.is_some() => {
                    // A reason the first cancellation would have refused is refused again.
                    check_reason(reason).map_err(ChangeRefused::from)?;
                    return Ok(stored);
                }
                EventChange::Cancel(reason) => {
                    let at = now_in_whole_seconds();
                    let changed = stored.cancelled(at, reason.clone())?;
                    let message = DomainEvent::EventCancelled(EventCancelled {
                        id,
                        revision: changed.revision,
                        cancelled_at: at,
                        reason: reason.clone(),
                    });
                    (changed, message)
                }
            };
            let announce = OutboxMessage::new(message).in_trace(command.trace_parent.clone());
            if self.events.update(&changed, &announce).await? {
                self.changed();
                self.waker.wake();
                tracing::info!(event_id = %id, revision = changed.revision,
                    event_name = announce.event.name(), "event changed");
                return Ok(changed);
            }
        }
        Err(ChangeError::Contended(CHANGE_ATTEMPTS))
    }

    /// One event.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn event(&self, id: EventId) -> Result<Option<Event>, RepositoryError> {
        self.events.get(id).await
    }

    /// The event named `name`.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn event_named(&self, name: &str) -> Result<Option<Event>, RepositoryError> {
        self.events.find_by_name(name).await
    }

    /// A page of events.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn events(&self, page: PageRequest) -> Result<Vec<Event>, RepositoryError> {
        self.events.list(page).await
    }

    /// One location.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn location(&self, id: LocationId) -> Result<Option<Location>, RepositoryError> {
        self.locations.get(id).await
    }

    /// A page of locations.
    ///
    /// # Errors
    /// The store's failure.
    pub async fn locations(&self, page: PageRequest) -> Result<Vec<Location>, RepositoryError> {
        self.locations.list(page).await
    }

    /// Counts `seats` booked (negative: given back) for an event, once per inbox key (consumer and
    /// message id).
    ///
    /// # Errors
    /// The store's failure.
    pub async fn record_booked_seats(
        &self,
        event_id: EventId,
        key: InboxKey<'_>,
        seats: i64,
    ) -> Result<SeatChange, RepositoryError> {
        let change = self
            .events
            .record_booked_seats(event_id, key, seats)
            .await?;
        self.changed();
        Ok(change)
    }
}

#[cfg(test)]
mod tests {
    use myevents_domain::access::Roles;
    use myevents_domain::booking::UserId;
    use myevents_domain::location::{HallDraft, LocationChangeRefused, LocationPatch};
    use myevents_store::Outbox;
    use myevents_store::memory::{InMemoryEventRepository, InMemoryOutbox};

    use super::*;

    fn service() -> (EventService, InMemoryOutbox) {
        let outbox = InMemoryOutbox::default();
        let events = InMemoryEventRepository::new(outbox.clone());
        let locations = Arc::new(events.locations());
        let service = EventService::new(Arc::new(events), locations, OutboxWaker::default());
        (service, outbox)
    }

    fn location_draft() -> LocationDraft {
        LocationDraft {
            name: Some("West Theatre".to_owned()),
            address: Some("1 Main St".to_owned()),
            country: Some("DE".to_owned()),
            open_time: Some(8),
            close_time: Some(23),
            halls: vec![HallDraft {
                name: Some("Hall A".to_owned()),
                location: None,
                capacity: Some(300),
            }],
        }
    }

    fn event_draft() -> EventDraft {
        EventDraft {
            name: Some("opera aida".to_owned()),
            duration: Some(120),
            start_date: Some(1_768_000_000),
            end_date: Some(1_768_007_200),
            hall: Some("Hall A".to_owned()),
            capacity: None,
        }
    }

    fn organiser() -> Principal {
        organiser_named("org")
    }

    /// A caller with the organiser role (and not an administrator).
    fn organiser_named(user: &str) -> Principal {
        Principal::new(
            UserId::parse(user).expect("user"),
            Roles {
                organiser: true,
                admin: false,
            },
        )
    }

    fn create_event(location: EventLocation) -> CreateEvent {
        CreateEvent {
            ids: (EventId::generate(), LocationId::generate()),
            resumed: false,
            draft: event_draft(),
            location,
            by: organiser(),
            trace_parent: None,
        }
    }

    #[tokio::test]
    async fn only_an_organiser_creates_locations_and_events() {
        let (service, outbox) = service();
        let user = Principal::new(UserId::parse("alice").expect("user"), Roles::default());
        let refused = service
            .create_event(CreateEvent {
                by: user.clone(),
                ..create_event(EventLocation::New(location_draft()))
            })
            .await;
        assert!(
            matches!(refused, Err(CreateError::Forbidden)),
            "{refused:?}"
        );
        let refused = service
            .create_location(CreateLocation {
                id: LocationId::generate(),
                resumed: false,
                draft: location_draft(),
                by: user,
                trace_parent: None,
            })
            .await;
        assert!(
            matches!(refused, Err(CreateError::Forbidden)),
            "{refused:?}"
        );
        assert!(names(&outbox).await.is_empty());
    }

    async fn names(outbox: &InMemoryOutbox) -> Vec<&'static str> {
        let pending = outbox.pending(100).await.expect("outbox");
        pending.iter().map(|m| m.event.name()).collect()
    }

    #[tokio::test]
    async fn an_event_with_a_new_location_stores_and_announces_both() {
        let (service, outbox) = service();
        let event = service
            .create_event(create_event(EventLocation::New(location_draft())))
            .await
            .expect("created");
        assert_eq!(event.location.name, "West Theatre");
        assert!(
            service
                .location(event.location.id)
                .await
                .expect("read")
                .is_some()
        );
        assert_eq!(names(&outbox).await, ["locationCreated", "eventCreated"]);
    }

    #[tokio::test]
    async fn an_event_needs_a_stored_or_described_location() {
        let (service, outbox) = service();
        for location in [
            EventLocation::Missing,
            EventLocation::Stored(LocationId::generate()),
        ] {
            let refused = service.create_event(create_event(location)).await;
            assert!(
                matches!(refused, Err(CreateError::Invalid(_))),
                "{refused:?}"
            );
        }
        assert!(names(&outbox).await.is_empty());
        let location = service
            .create_location(CreateLocation {
                id: LocationId::generate(),
                resumed: false,
                draft: location_draft(),
                by: organiser(),
                trace_parent: None,
            })
            .await
            .expect("location");
        let event = service
            .create_event(create_event(EventLocation::Stored(location.id)))
            .await
            .expect("event");
        assert_eq!(event.location, location);
        assert_eq!(names(&outbox).await, ["locationCreated", "eventCreated"]);
    }

    #[tokio::test]
    async fn a_resumed_command_reuses_what_was_stored_and_announces_nothing_twice() {
        let (service, outbox) = service();
        let first = create_event(EventLocation::New(location_draft()));
        let stored = service.create_event(first.clone()).await.expect("created");
        let again = service
            .create_event(CreateEvent {
                resumed: true,
                ..first
            })
            .await
            .expect("resumed");
        assert_eq!(again, stored);
        assert_eq!(names(&outbox).await.len(), 2);
    }

    fn change(id: EventId, change: EventChange, by: Principal) -> ChangeEvent {
        ChangeEvent {
            id,
            change,
            by,
            trace_parent: None,
        }
    }

    #[tokio::test]
    async fn the_organiser_edits_and_cancels_and_each_change_is_announced_once() {
        let (service, outbox) = service();
        let event = service
            .create_event(create_event(EventLocation::New(location_draft())))
            .await
            .expect("created");
        let grow = EventChange::Edit(EventPatch {
            capacity: Some(400),
            ..EventPatch::default()
        });
        let changed = service
            .change_event(change(event.id, grow, organiser()), |_| true)
            .await
            .expect("edited");
        assert_eq!((changed.capacity.get(), changed.revision), (400, 1));
        let cancel = || EventChange::Cancel("storm".to_owned());
        let cancelled = service
            .change_event(change(event.id, cancel(), organiser()), |_| true)
            .await
            .expect("cancelled");
        assert_eq!(cancelled.revision, 2);
        let again = service
            .change_event(change(event.id, cancel(), organiser()), |_| true)
            .await
            .expect("cancelled again");
        assert_eq!(again, cancelled, "cancelling again changes nothing");
        assert_eq!(
            names(&outbox).await,
            [
                "locationCreated",
                "eventCreated",
                "eventUpdated",
                "eventCancelled"
            ]
        );
        let refused = service
            .change_event(
                change(
                    event.id,
                    EventChange::Edit(EventPatch::default()),
                    organiser(),
                ),
                |_| true,
            )
            .await;
        assert!(
            matches!(refused, Err(ChangeError::Refused(ChangeRefused::Cancelled))),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn strangers_stale_copies_and_unknown_events_change_nothing() {
        let (service, outbox) = service();
        let event = service
            .create_event(create_event(EventLocation::New(location_draft())))
            .await
            .expect("created");
        let edit = || {
            EventChange::Edit(EventPatch {
                name: Some("renamed".to_owned()),
                ..EventPatch::default()
            })
        };
        let other_organiser = organiser_named("other");
        let refused = service
            .change_event(change(event.id, edit(), other_organiser), |_| true)
            .await;
        assert!(
            matches!(refused, Err(ChangeError::Forbidden)),
            "{refused:?}"
        );
        let refused = service
            .change_event(change(event.id, edit(), organiser()), |_| false)
            .await;
        assert!(matches!(refused, Err(ChangeError::Stale)), "{refused:?}");
        let unknown = EventId::generate();
        let refused = service
            .change_event(change(unknown, edit(), organiser()), |_| true)
            .await;
        assert!(
            matches!(refused, Err(ChangeError::NotFound(_))),
            "{refused:?}"
        );
        assert_eq!(
            service.event(event.id).await.expect("read"),
            Some(event.clone())
        );
        assert_eq!(names(&outbox).await.len(), 2);
        let admin = Principal::new(
            UserId::parse("root").expect("user"),
            Roles {
                organiser: false,
                admin: true,
            },
        );
        let renamed = service
            .change_event(change(event.id, edit(), admin), |stored| stored == &event)
            .await
            .expect("an administrator edits any event");
        assert_eq!(renamed.name, "renamed");
    }

    #[tokio::test]
    async fn booked_seats_count_once_per_message_and_unknown_events_say_so() {
        let (service, _) = service();
        let event = service
            .create_event(create_event(EventLocation::New(location_draft())))
            .await
            .expect("created");
        let key = |id: &'static str| InboxKey {
            consumer: "events-service",
            message_id: id,
        };
        let record = |id: &'static str| service.record_booked_seats(event.id, key(id), 2);
        assert_eq!(record("m1").await.expect("applied"), SeatChange::Applied);
        assert_eq!(record("m1").await.expect("again"), SeatChange::Duplicate);
        let unknown = service
            .record_booked_seats(EventId::generate(), key("m2"), 1)
            .await
            .expect("answered");
        assert_eq!(unknown, SeatChange::UnknownEvent);
    }

    fn change_location(id: LocationId, change: LocationChange, by: Principal) -> ChangeLocation {
        ChangeLocation {
            id,
            change,
            by,
            trace_parent: None,
        }
    }

    #[tokio::test]
    async fn the_creator_renames_and_extends_a_location_over_the_copy_read() {
        let (service, outbox) = service();
        let location = service
            .create_location(CreateLocation {
                id: LocationId::generate(),
                resumed: false,
                draft: location_draft(),
                by: organiser(),
                trace_parent: None,
            })
            .await
            .expect("location");
        assert_eq!(location.organiser, Some(organiser().user().clone()));
        let mut halls = location_draft().halls;
        halls.push(HallDraft {
            name: Some("Hall B".to_owned()),
            location: Some("annex".to_owned()),
            capacity: Some(40),
        });
        let rename = LocationChange::Edit(LocationPatch {
            name: Some("West Theatre and Annex".to_owned()),
            halls: Some(halls),
            ..LocationPatch::default()
        });
        let other = organiser_named("other-org");
        let refused = service
            .change_location(change_location(location.id, rename.clone(), other), |_| {
                true
            })
            .await;
        assert!(
            matches!(refused, Err(LocationChangeError::Forbidden)),
            "{refused:?}"
        );
        let stale = service
            .change_location(
                change_location(location.id, rename.clone(), organiser()),
                |_| false,
            )
            .await;
        assert!(
            matches!(stale, Err(LocationChangeError::Stale)),
            "{stale:?}"
        );
        let changed = service
            .change_location(
                change_location(location.id, rename, organiser()),
                |stored| stored == &location,
            )
            .await
            .expect("changed")
            .expect("kept");
        assert_eq!(changed.revision, 1);
        assert_eq!(changed.halls.len(), 2);
        assert_eq!(
            service.location(location.id).await.expect("read"),
            Some(changed)
        );
        let shrink = LocationChange::Edit(LocationPatch {
            halls: Some(Vec::new()),
            ..LocationPatch::default()
        });
        let refused = service
            .change_location(change_location(location.id, shrink, organiser()), |_| true)
            .await;
        assert!(
            matches!(
                refused,
                Err(LocationChangeError::Refused(
                    LocationChangeRefused::HallsRemoved { stored: 2 }
                ))
            ),
            "{refused:?}"
        );
        assert_eq!(names(&outbox).await, ["locationCreated", "locationUpdated"]);
    }

    #[tokio::test]
    async fn a_location_is_deleted_once_its_events_to_come_are_cancelled() {
        let (service, outbox) = service();
        let mut command = create_event(EventLocation::New(location_draft()));
        command.draft.start_date = Some(4_000_000_000);
        command.draft.end_date = Some(4_000_007_200);
        let event = service.create_event(command).await.expect("created");
        let location = event.location.id;
        let delete = || change_location(location, LocationChange::Delete, organiser());
        let refused = service.change_location(delete(), |_| true).await;
        assert!(
            matches!(refused, Err(LocationChangeError::InUse(id)) if id == event.id),
            "{refused:?}"
        );
        service
            .change_event(
                change(event.id, EventChange::Cancel(String::new()), organiser()),
                |_| true,
            )
            .await
            .expect("cancelled");
        let deleted = service.change_location(delete(), |_| true).await;
        assert!(matches!(deleted, Ok(None)), "{deleted:?}");
        assert_eq!(service.location(location).await.expect("read"), None);
        let gone = service.change_location(delete(), |_| true).await;
        assert!(
            matches!(gone, Err(LocationChangeError::NotFound(_))),
            "{gone:?}"
        );
        let refused = service
            .create_event(create_event(EventLocation::Stored(location)))
            .await;
        assert!(
            matches!(refused, Err(CreateError::Invalid(_))),
            "{refused:?}"
        );
        assert_eq!(
            names(&outbox).await,
            [
                "locationCreated",
                "eventCreated",
                "eventCancelled",
                "locationDeleted"
            ]
        );
    }
}
