//! The event service's collections: `locations` and `events`.

use async_trait::async_trait;
use futures_util::{FutureExt, TryStreamExt};
use mongodb::Collection;
use mongodb::bson::{Document, doc};
use myevents_domain::event::Event;
use myevents_domain::id::{EventId, LocationId};
use myevents_domain::location::Location;
use myevents_domain::messages::OutboxMessage;
use serde::de::DeserializeOwned;

use super::documents::{
    EventDoc, LocationDoc, OutboxDoc, outbox_entry, revision, to_bson_date, to_bson_id,
    to_bson_value,
};
use super::{MongoStore, map_error};
use crate::{
    EventRepository, InboxKey, LocationDeletion, LocationRepository, PageRequest, RepositoryError,
    SeatChange,
};

pub(crate) const LOCATIONS: &str = "locations";
pub(crate) const EVENTS: &str = "events";
/// Messages applied to events: `{_id: {consumer, message_id}, event_id, seats, received_at}`.
pub(crate) const INBOX: &str = "inbox";

/// Reads one page in `_id` order among documents matching `filter`, converting each document.
pub(crate) async fn find_page<D, T>(
    collection: &Collection<D>,
    mut filter: Document,
    page: PageRequest,
) -> Result<Vec<T>, RepositoryError>
where
    D: DeserializeOwned + Send + Sync,
    T: TryFrom<D, Error = RepositoryError>,
{
    if let Some(after) = page.after {
        filter.insert("_id", doc! {"$gt": to_bson_id(after)});
    }
    let limit = i64::try_from(page.limit).unwrap_or(i64::MAX);
    let documents: Vec<D> = collection
        .find(filter)
        .sort(doc! {"_id": 1})
        .limit(limit)
        .await
        .map_err(map_error)?
        .try_collect()
        .await
        .map_err(map_error)?;
    documents.into_iter().map(T::try_from).collect()
}

/// Locations in MongoDB.
#[derive(Debug, Clone)]
pub struct MongoLocationRepository {
    store: MongoStore,
    locations: Collection<LocationDoc>,
}

impl MongoLocationRepository {
    /// The repository on `store`'s database.
    pub fn new(store: &MongoStore) -> Self {
        Self {
            store: store.clone(),
            locations: store.database().collection(LOCATIONS),
        }
    }
}

#[async_trait]
impl LocationRepository for MongoLocationRepository {
    async fn insert(
        &self,
        location: &Location,
        announce: &OutboxMessage,
    ) -> Result<(), RepositoryError> {
        self.store.ensure_initialised()?;
        let mut document = LocationDoc::from(location);
        document.outbox.push(OutboxDoc::from(announce));
        self.locations
            .insert_one(document)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    async fn get(&self, id: LocationId) -> Result<Option<Location>, RepositoryError> {
        self.store.ensure_initialised()?;
        self.locations
            .find_one(doc! {"_id": to_bson_id(id.object_id()), "deleted_at": {"$exists": false}})
            .await
            .map_err(map_error)?
            .map(Location::try_from)
            .transpose()
    }

    async fn list(&self, page: PageRequest) -> Result<Vec<Location>, RepositoryError> {
        self.store.ensure_initialised()?;
        find_page(
            &self.locations,
            doc! {"deleted_at": {"$exists": false}},
            page,
        )
        .await
    }

    async fn update(
        &self,
        location: &Location,
        announce: &OutboxMessage,
    ) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let Some(previous) = location.revision.checked_sub(1) else {
            return Ok(false);
        };
        let live =
            doc! {"_id": to_bson_id(location.id.object_id()), "deleted_at": {"$exists": false}};
        let filter = at_revision(live, previous)?;
        let halls = to_bson_value(&LocationDoc::halls_of(location))?;
        let fields = doc! {
            "name": &location.name,
            "address": &location.address,
            "country": &location.country,
            "opentime": i32::from(location.open_time),
            "closetime": i32::from(location.close_time),
            "halls": halls,
            "revision": revision(location.revision)?,
        };
        let outbox = outbox_entry(announce)?;
        let updated = self
            .locations
            .update_one(filter, doc! {"$set": fields, "$push": {"outbox": outbox}})
            .await
            .map_err(map_error)?;
        Ok(updated.matched_count == 1)
    }

    async fn delete(
        &self,
        id: LocationId,
        expected: u64,
        announce: &OutboxMessage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<LocationDeletion, RepositoryError> {
        self.store.ensure_initialised()?;
        let id = to_bson_id(id.object_id());
        let filter = at_revision(doc! {"_id": id, "deleted_at": {"$exists": false}}, expected)?;
        let outbox = outbox_entry(announce)?;
        let deletion = doc! {
            "$set": {"deleted_at": to_bson_date(now), "revision": revision(expected + 1)?},
            "$push": {"outbox": outbox},
        };
        let upcoming = doc! {
            "location._id": id,
            "cancelled_at": {"$exists": false},
            "enddate": {"$gt": to_bson_date(now)},
        };
        let events: Collection<EventDoc> = self.store.database().collection(EVENTS);
        let mut session = self.store.session().await?;
        // The check and the deletion commit together; an event inserted at the location meanwhile
        // writes the location's document too (see `MongoEventRepository::insert`), so one of the
        // two transactions meets a write conflict and runs again over what the other stored.
        let deleted = session
            .start_transaction()
            .and_run(
                (&self.locations, &events, filter, deletion, upcoming),
                |session, (locations, events, filter, deletion, upcoming)| {
                    async move {
                        let first = events
                            .find_one(upcoming.clone())
                            .sort(doc! {"enddate": 1, "_id": 1})
                            .session(&mut *session)
                            .await?;
                        if let Some(event) = first {
                            let event =
                                Event::try_from(event).map_err(mongodb::error::Error::custom)?;
                            return Ok(LocationDeletion::InUse(event.id));
                        }
                        let updated = locations
                            .update_one(filter.clone(), deletion.clone())
                            .session(&mut *session)
                            .await?;
                        Ok(if updated.matched_count == 1 {
                            LocationDeletion::Deleted
                        } else {
                            LocationDeletion::Stale
                        })
                    }
                    .boxed()
                },
            )
            .await;
        deleted.map_err(|error| match error.get_custom::<RepositoryError>() {
            Some(cause) => RepositoryError::Unexpected(crate::Cause::msg(cause.to_string())),
            None => map_error(error),
        })
    }
}

/// `filter` narrowed to a document at `expected` revision; documents stored before revisions were
/// kept have none, which is revision 0.
fn at_revision(mut filter: Document, expected: u64) -> Result<Document, RepositoryError> {
    if expected == 0 {
        filter.insert(
            "$or",
            vec![
                doc! {"revision": 0_i64},
                doc! {"revision": {"$exists": false}},
            ],
        );
    } else {
        filter.insert("revision", revision(expected)?);
    }
    Ok(filter)
}

/// Why an event insert's transaction stopped: its location was deleted.
#[derive(Debug)]
struct LocationGone;

/// Events in MongoDB (each with a copy of its location), and the inbox of the messages applied to
/// them in a collection of its own (unique per consumer and message id by its `_id`, removed after
/// [`crate::INBOX_RETENTION`] by a TTL index), so reading an event never reads its inbox.
#[derive(Debug, Clone)]
pub struct MongoEventRepository {
    store: MongoStore,
    events: Collection<EventDoc>,
    inbox: Collection<Document>,
}

impl MongoEventRepository {
    /// The repository on `store`'s database.
    pub fn new(store: &MongoStore) -> Self {
        Self {
            store: store.clone(),
            events: store.database().collection(EVENTS),
            inbox: store.database().collection(INBOX),
        }
    }
}

#[async_trait]
impl EventRepository for MongoEventRepository {
    async fn insert(&self, event: &Event, announce: &OutboxMessage) -> Result<(), RepositoryError> {
        self.store.ensure_initialised()?;
        let mut document = EventDoc::from(event);
        document.outbox.push(OutboxDoc::from(announce));
        let location = to_bson_id(event.location.id.object_id());
        let locations: Collection<LocationDoc> = self.store.database().collection(LOCATIONS);
        let mut session = self.store.session().await?;
        // Counting the event on its location's document writes that document, so a deletion of
        // the location running at the same time meets a write conflict (see
        // `MongoLocationRepository::delete`). A location that is not stored (older data) is not
        // counted.
        let inserted = session
            .start_transaction()
            .and_run(
                (&locations, &self.events, document),
                |session, (locations, events, document)| {
                    async move {
                        let counted = locations
                            .find_one_and_update(
                                doc! {"_id": location},
                                doc! {"$inc": {"events_created": 1_i64}},
                            )
                            .session(&mut *session)
                            .await?;
                        if counted.is_some_and(|l| l.deleted_at.is_some()) {
                            return Err(mongodb::error::Error::custom(LocationGone));
                        }
                        events.insert_one(&*document).session(&mut *session).await?;
                        Ok(())
                    }
                    .boxed()
                },
            )
            .await;
        inserted.map_err(|error| match error.get_custom::<LocationGone>() {
            Some(_) => {
                RepositoryError::Gone(crate::Cause::msg(format!("location {}", event.location.id)))
            }
            None => map_error(error),
        })
    }

    async fn get(&self, id: EventId) -> Result<Option<Event>, RepositoryError> {
        self.store.ensure_initialised()?;
        self.events
            .find_one(doc! {"_id": to_bson_id(id.object_id())})
            .await
            .map_err(map_error)?
            .map(Event::try_from)
            .transpose()
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<Event>, RepositoryError> {
        self.store.ensure_initialised()?;
        self.events
            .find_one(doc! {"name": name})
            .sort(doc! {"_id": 1})
            .await
            .map_err(map_error)?
            .map(Event::try_from)
            .transpose()
    }

    async fn record_booked_seats(
        &self,
        id: EventId,
        key: InboxKey<'_>,
        seats: i64,
    ) -> Result<SeatChange, RepositoryError> {
        self.store.ensure_initialised()?;
        let id = to_bson_id(id.object_id());
        let record = doc! {
            "_id": {"consumer": key.consumer, "message_id": key.message_id},
            "event_id": id,
            "seats": seats,
            "received_at": mongodb::bson::DateTime::now(),
        };
        let mut session = self.store.session().await?;
        // The inbox record and the effect commit together or not at all; a duplicate key on the
        // inbox aborts the transaction (the message was applied), as does an unknown event.
        let applied = session
            .start_transaction()
            .and_run(
                (&self.inbox, &self.events, record),
                |session, (inbox, events, record)| {
                    async move {
                        inbox
                            .insert_one(record.clone())
                            .session(&mut *session)
                            .await?;
                        let updated = events
                            .update_one(doc! {"_id": id}, doc! {"$inc": {"booked": seats}})
                            .session(&mut *session)
                            .await?;
                        if updated.matched_count == 0 {
                            return Err(mongodb::error::Error::custom(SeatChange::UnknownEvent));
                        }
                        Ok(SeatChange::Applied)
                    }
                    .boxed()
                },
            )
            .await;
        match applied {
            Ok(change) => Ok(change),
            Err(error) if error.get_custom::<SeatChange>().is_some() => {
                Ok(SeatChange::UnknownEvent)
            }
            Err(error) => match map_error(error) {
                RepositoryError::Conflict(_) => Ok(SeatChange::Duplicate),
                other => Err(other),
            },
        }
    }

    async fn list(&self, page: PageRequest) -> Result<Vec<Event>, RepositoryError> {
        self.store.ensure_initialised()?;
        find_page(&self.events, doc! {}, page).await
    }

    async fn update(
        &self,
        event: &Event,
        announce: &OutboxMessage,
    ) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let Some(previous) = event.revision.checked_sub(1) else {
            return Ok(false);
        };
        let filter = at_revision(doc! {"_id": to_bson_id(event.id.object_id())}, previous)?;
        let mut fields = doc! {
            "name": &event.name,
            "duration": i64::from(event.duration_minutes),
            "startdate": to_bson_date(event.start),
            "enddate": to_bson_date(event.end),
            "capacity": i64::from(event.capacity.get()),
            "revision": revision(event.revision)?,
        };
        if let Some(cancelled) = &event.cancelled {
            fields.insert("cancelled_at", to_bson_date(cancelled.at));
            fields.insert("cancel_reason", &cancelled.reason);
        }
        let outbox = outbox_entry(announce)?;
        let updated = self
            .events
            .update_one(filter, doc! {"$set": fields, "$push": {"outbox": outbox}})
            .await
            .map_err(map_error)?;
        Ok(updated.matched_count == 1)
    }
}
