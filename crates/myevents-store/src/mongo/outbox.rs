//! The outbox of a MongoDB store: pending messages embedded in the documents of some collections,
//! read in stored order (by message id) across batches.

use crate::Cause;
use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{Document, doc};
use myevents_domain::messages::OutboxMessage;
use serde::Deserialize;

use super::documents::OutboxDoc;
use super::{MongoStore, bookings, events, map_error};
use crate::{Outbox, RepositoryError};

#[derive(Deserialize)]
struct WithOutbox {
    #[serde(default)]
    outbox: Vec<OutboxDoc>,
}

/// Pending messages embedded in the documents of a service's collections.
#[derive(Debug, Clone)]
pub struct MongoOutbox {
    store: MongoStore,
    collections: Vec<Collection<Document>>,
}

impl MongoOutbox {
    /// The event service's outbox (`locations`, `events`).
    pub fn for_event_service(store: &MongoStore) -> Self {
        Self::over(store, &[events::LOCATIONS, events::EVENTS])
    }

    /// The booking service's outbox (`bookings`).
    pub fn for_booking_service(store: &MongoStore) -> Self {
        Self::over(store, &[bookings::BOOKINGS])
    }

    fn over(store: &MongoStore, names: &[&str]) -> Self {
        Self {
            store: store.clone(),
            collections: names
                .iter()
                .map(|name| store.database().collection(name))
                .collect(),
        }
    }
}

#[async_trait]
impl Outbox for MongoOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, RepositoryError> {
        self.store.ensure_initialised()?;
        let mut pending = Vec::new();
        let most = i64::try_from(limit).unwrap_or(i64::MAX);
        for collection in &self.collections {
            // Documents in the order of their oldest pending message (an ascending sort on an array
            // field orders by its least element), through the `outbox.id` index: the first `limit`
            // documents hold the first `limit` messages of the collection, whichever they are.
            let documents: Vec<Document> = collection
                .find(doc! {"outbox.id": {"$exists": true}})
                .sort(doc! {"outbox.id": 1})
                .projection(doc! {"outbox": 1})
                .limit(most)
                .await
                .map_err(map_error)?
                .try_collect()
                .await
                .map_err(map_error)?;
            for document in documents {
                let with: WithOutbox = mongodb::bson::from_document(document)
                    .map_err(|e| RepositoryError::Unexpected(Cause::new(e)))?;
                for message in with.outbox {
                    pending.push(OutboxMessage::try_from(message)?);
                }
            }
        }
        // Message ids are UUID v7: in the order of their creation (within a process, to the
        // millisecond across processes), which is the order they were stored in.
        pending.sort_by(|a, b| a.id.cmp(&b.id));
        pending.truncate(limit);
        Ok(pending)
    }

    async fn mark_published(&self, id: &str) -> Result<(), RepositoryError> {
        self.store.ensure_initialised()?;
        for collection in &self.collections {
            collection
                .update_many(
                    doc! {"outbox.id": id},
                    doc! {"$pull": {"outbox": {"id": id}}},
                )
                .await
                .map_err(map_error)?;
        }
        Ok(())
    }
}
