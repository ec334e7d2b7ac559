//! The outbox of a MongoDB store: pending messages embedded in the documents of some collections,
//! read in stored order (by message id) across batches through the sparse `outbox_pending` indexes,
//! and the relay claim in `outbox_claims`.

use crate::Cause;
use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};
use myevents_domain::messages::OutboxMessage;
use serde::Deserialize;
use std::time::Duration;

use super::documents::OutboxDoc;
use super::{MongoStore, bookings, events, map_error};
use crate::{Backlog, Outbox, RepositoryError};

#[derive(Deserialize)]
struct WithOutbox {
    #[serde(default)]
    outbox: Vec<OutboxDoc>,
}

/// The collection of relay claims: `{_id: outbox name, relay, until}`, `until` in milliseconds
/// since the Unix epoch.
const CLAIMS: &str = "outbox_claims";

/// Pending messages embedded in the documents of a service's collections.
#[derive(Debug, Clone)]
pub struct MongoOutbox {
    store: MongoStore,
    /// The outbox's name: its claim's `_id`.
    name: &'static str,
    collections: Vec<Collection<Document>>,
    claims: Collection<Document>,
}

impl MongoOutbox {
    /// The event service's outbox (`locations`, `events`).
    pub fn for_event_service(store: &MongoStore) -> Self {
        Self::over(store, "event-service", &[events::LOCATIONS, events::EVENTS])
    }

    /// The booking service's outbox (`bookings`).
    pub fn for_booking_service(store: &MongoStore) -> Self {
        Self::over(store, "booking-service", &[bookings::BOOKINGS])
    }

    fn over(store: &MongoStore, name: &'static str, names: &[&str]) -> Self {
        Self {
            store: store.clone(),
            name,
            claims: store.database().collection(CLAIMS),
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

    async fn mark_published(&self, ids: &[String]) -> Result<(), RepositoryError> {
        self.store.ensure_initialised()?;
        if ids.is_empty() {
            return Ok(());
        }
        for collection in &self.collections {
            collection
                .update_many(
                    doc! {"outbox.id": {"$in": ids}},
                    doc! {"$pull": {"outbox": {"id": {"$in": ids}}}},
                )
                .await
                .map_err(map_error)?;
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, RepositoryError> {
        self.store.ensure_initialised()?;
        let mut pending = 0u64;
        for collection in &self.collections {
            let counted: Vec<Document> = collection
                .aggregate([
                    doc! {"$match": {"outbox.id": {"$exists": true}}},
                    doc! {"$group": {"_id": null, "pending": {"$sum": {"$size": "$outbox"}}}},
                ])
                .await
                .map_err(map_error)?
                .try_collect()
                .await
                .map_err(map_error)?;
            let count = counted.first().map_or(Ok(0), |d| match d.get("pending") {
                Some(Bson::Int32(n)) => Ok(i64::from(*n)),
                Some(Bson::Int64(n)) => Ok(*n),
                other => Err(RepositoryError::Unexpected(Cause::msg(format!(
                    "an outbox count of {other:?}"
                )))),
            })?;
            pending += u64::try_from(count).unwrap_or(0);
        }
        // The oldest is the first in stored order. (A `$min` over `$outbox.occurred_at` in the same
        // `$group` would save a round trip, but the SecantusDB test server answers it with null.)
        let oldest = self.pending(1).await?.first().map(|m| m.occurred_at);
        Ok(Backlog { pending, oldest })
    }

    async fn claim(&self, relay: &str, lease: Duration) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let now = chrono::Utc::now().timestamp_millis();
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        let claimed = self
            .claims
            .update_one(
                doc! {"_id": self.name, "$or": [{"relay": relay}, {"until": {"$lte": now}}]},
                doc! {"$set": {"relay": relay, "until": until}},
            )
            .upsert(true)
            .await;
        match claimed.map_err(map_error) {
            Ok(_) => Ok(true),
            // Another relay's lease runs: the filter matched nothing, and the upsert collided with
            // its claim.
            Err(RepositoryError::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn release(&self, relay: &str) -> Result<(), RepositoryError> {
        self.store.ensure_initialised()?;
        self.claims
            .update_one(
                doc! {"_id": self.name, "relay": relay},
                doc! {"$set": {"until": 0_i64}},
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }
}
