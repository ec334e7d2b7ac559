//! The event service's collections: `locations` and `events`.

use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{Document, doc};
use myevents_domain::event::Event;
use myevents_domain::id::{EventId, LocationId};
use myevents_domain::location::Location;
use myevents_domain::messages::OutboxMessage;
use serde::de::DeserializeOwned;

use super::documents::{EventDoc, LocationDoc, OutboxDoc, to_bson_id};
use super::{MongoStore, map_error};
use crate::{
    EventRepository, INBOX_WINDOW, LocationRepository, PageRequest, RepositoryError, SeatChange,
};

pub(crate) const LOCATIONS: &str = "locations";
pub(crate) const EVENTS: &str = "events";

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

/// Events in MongoDB (each with a copy of its location).
#[derive(Debug, Clone)]
pub struct MongoEventRepository {
    store: MongoStore,
    events: Collection<EventDoc>,
}

impl MongoEventRepository {
    /// The repository on `store`'s database.
    pub fn new(store: &MongoStore) -> Self {
        Self {
            store: store.clone(),
            events: store.database().collection(EVENTS),
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
        message_id: &str,
        seats: i64,
    ) -> Result<SeatChange, RepositoryError> {
        self.store.ensure_initialised()?;
        let id = to_bson_id(id.object_id());
        let window = -i64::try_from(INBOX_WINDOW).unwrap_or(i64::MAX);
        let result = self
            .events
            .update_one(
                doc! {"_id": id, "inbox": {"$ne": message_id}},
                doc! {
                    "$inc": {"booked": seats},
                    "$push": {"inbox": {"$each": [message_id], "$slice": window}},
                },
            )
            .await
            .map_err(map_error)?;
        if result.matched_count == 1 {
            return Ok(SeatChange::Applied);
        }
        let exists = self
            .events
            .count_documents(doc! {"_id": id})
            .await
            .map_err(map_error)?;
        Ok(if exists > 0 {
            SeatChange::Duplicate
        } else {
            SeatChange::UnknownEvent
        })
    }

    async fn list(&self, page: PageRequest) -> Result<Vec<Event>, RepositoryError> {
        self.store.ensure_initialised()?;
        find_page(&self.events, doc! {}, page).await
    }
}
