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

use super::documents::{EventDoc, LocationDoc, OutboxDoc, revision, to_bson_date, to_bson_id};
use super::{MongoStore, map_error};
use crate::{
    EventRepository, InboxKey, LocationRepository, PageRequest, RepositoryError, SeatChange,
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
            .find_one(doc! {"_id": to_bson_id(id.object_id())})
            .await
            .map_err(map_error)?
            .map(Location::try_from)
            .transpose()
    }

    async fn list(&self, page: PageRequest) -> Result<Vec<Location>, RepositoryError> {
        self.store.ensure_initialised()?;
        find_page(&self.locations, doc! {}, page).await
    }
}

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
        self.events.insert_one(document).await.map_err(map_error)?;
        Ok(())
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
        let mut session = self
            .store
            .database()
            .client()
            .start_session()
            .await
            .map_err(map_error)?;
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
        let mut filter = doc! {"_id": to_bson_id(event.id.object_id())};
        if previous == 0 {
            // Documents stored before revisions were kept have none: revision 0.
            filter.insert(
                "$or",
                vec![
                    doc! {"revision": 0_i64},
                    doc! {"revision": {"$exists": false}},
                ],
            );
        } else {
            filter.insert("revision", revision(previous)?);
        }
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
        let outbox = mongodb::bson::to_bson(&OutboxDoc::from(announce))
            .map_err(|e| RepositoryError::Unexpected(crate::Cause::new(e)))?;
        let updated = self
            .events
            .update_one(filter, doc! {"$set": fields, "$push": {"outbox": outbox}})
            .await
            .map_err(map_error)?;
        Ok(updated.matched_count == 1)
    }
}
