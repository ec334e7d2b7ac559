//! Events in DynamoDB, with the inbox of the messages applied to them.
//!
//! Item `event#<id>`: the event's fields ([`EventFields`]: `id`, `name`, `duration_minutes`,
//! `start`/`end` (ms), `location` (a map: the location's fields when the event was created),
//! `hall`?, `capacity`, `booked`, `organiser`?, `revision`, `cancelled`? (`{at, reason}`)), in `gsi1`
//! under `events` and in `gsi2` under `name#<name>`, both sorted by id. `booked` is only ever added
//! to (`ADD`), so it may run below zero or above the capacity while messages arrive out of order;
//! it is clamped when read.
//!
//! Item `inbox#<consumer>#<message id>`: one message applied to an event (`event_id`, `seats`,
//! `received_at` in ms), with `ttl` (epoch seconds) [`crate::INBOX_RETENTION`] after it was
//! received, when DynamoDB may remove it; until it does, an expired record counts as absent.
//!
//! Inserting an event adds its id to its location's item (`event_ids`, see
//! [`super::DynamoLocationRepository`]) in the same transaction, which a deleted location refuses.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use myevents_domain::event::Event;
use myevents_domain::id::EventId;
use myevents_domain::messages::OutboxMessage;
use serde::{Deserialize, Serialize};

use super::items::{EventFields, millis};
use super::locations::{EVENT_IDS, location_key, overwrite};
use super::{DynamoStore, Expr, Index, Item, Range, from_item, n, s, to_item};
use crate::{
    Cause, EventRepository, INBOX_RETENTION, InboxKey, PageRequest, RepositoryError, SeatChange,
};

/// `gsi1` partition of the events.
const EVENTS: &str = "events";

/// How many times an insert reads its location again when the location changed between its read
/// and the write (it was stored, or deleted, meanwhile).
const INSERT_ATTEMPTS: usize = 5;

/// The key of event `id`.
pub(crate) fn event_key(id: EventId) -> String {
    format!("event#{id}")
}

/// The `gsi2` partition of the events named `name`.
fn name_key(name: &str) -> String {
    format!("name#{name}")
}

/// A stored event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventItem {
    pk: String,
    #[serde(flatten)]
    pub(crate) event: EventFields,
    g1pk: String,
    g1sk: String,
    g2pk: String,
    g2sk: String,
}

impl EventItem {
    /// The item of a new event.
    fn new(event: &Event) -> Self {
        let fields = EventFields::from(event);
        Self {
            pk: event_key(event.id),
            g1pk: EVENTS.to_owned(),
            g1sk: fields.id.clone(),
            g2pk: name_key(&fields.name),
            g2sk: fields.id.clone(),
            event: fields,
        }
    }
}

/// A message applied to an event, remembered until `ttl` (epoch seconds).
#[derive(Debug, Clone, Serialize)]
struct InboxItem {
    pk: String,
    consumer: String,
    message_id: String,
    event_id: String,
    seats: i64,
    received_at: i64,
    ttl: i64,
}

/// The events of `items` (as a listing returned them).
fn events(items: Vec<Item>) -> Result<Vec<Event>, RepositoryError> {
    items
        .into_iter()
        .map(|item| from_item::<EventItem>(item)?.event.into_domain())
        .collect()
}

/// Events in DynamoDB (see the module's documentation for the items). Shares its table with
/// [`super::DynamoLocationRepository`]: an insert writes the event's location item too.
#[derive(Debug, Clone)]
pub struct DynamoEventRepository {
    store: DynamoStore,
}

impl DynamoEventRepository {
    /// The repository on `store`'s table.
    pub fn new(store: &DynamoStore) -> Self {
        Self {
            store: store.clone(),
        }
    }
}

#[async_trait]
impl EventRepository for DynamoEventRepository {
    async fn insert(&self, event: &Event, announce: &OutboxMessage) -> Result<(), RepositoryError> {
        let item = to_item(&EventItem::new(event))?;
        let location = location_key(event.location.id);
        let new_item = Expr::new().name("#pk", "pk");
        for _ in 0..INSERT_ATTEMPTS {
            // A stored location counts the event (so that its deletion, conditional on the version
            // it read, sees it or fails); one never stored here (older data, or the location's
            // copy only) is left as it is, and only checked to be still absent.
            let guard = match self.store.get(&location).await? {
                Some(stored) if stored.contains_key("deleted_at") => {
                    return Err(RepositoryError::Gone(Cause::msg(format!(
                        "location {}",
                        event.location.id
                    ))));
                }
                Some(_) => self.store.update(
                    &location,
                    "ADD #ids :ids, #ver :one",
                    Some("attribute_exists(#pk) AND attribute_not_exists(#del)"),
                    &Expr::new()
                        .name("#ids", EVENT_IDS)
                        .name("#ver", "version")
                        .name("#pk", "pk")
                        .name("#del", "deleted_at")
                        .value(":ids", AttributeValue::Ss(vec![event.id.to_string()]))
                        .value(":one", n(1)),
                )?,
                None => self
                    .store
                    .check(&location, "attribute_not_exists(#pk)", &new_item)?,
            };
            let writes = vec![
                self.store
                    .put(item.clone(), Some("attribute_not_exists(#pk)"), &new_item)?,
                guard,
                super::outbox::stage(&self.store, announce)?,
            ];
            match self.store.transact(writes).await {
                Ok(()) => return Ok(()),
                // The location was stored or deleted meanwhile: read it again (a deleted location
                // wins over a taken id, as in memory).
                Err(refused) if refused.refused(1) => {}
                Err(refused) if refused.refused(0) => {
                    return Err(RepositoryError::Conflict(Cause::msg(format!(
                        "event {}",
                        event.id
                    ))));
                }
                Err(error) => return Err(error.into_store("insert event")),
            }
        }
        Err(RepositoryError::Unavailable(Cause::msg(format!(
            "location {} kept changing while event {} was being inserted; try again",
            event.location.id, event.id
        ))))
    }

    async fn get(&self, id: EventId) -> Result<Option<Event>, RepositoryError> {
        self.store
            .get_as::<EventItem>(&event_key(id))
            .await?
            .map(|item| item.event.into_domain())
            .transpose()
    }

    async fn find_by_name(&self, name: &str) -> Result<Option<Event>, RepositoryError> {
        let items = self
            .store
            .query(Index::G2, &name_key(name), Range::All, 1)
            .await?;
        Ok(events(items)?.into_iter().next())
    }

    async fn record_booked_seats(
        &self,
        id: EventId,
        key: InboxKey<'_>,
        seats: i64,
    ) -> Result<SeatChange, RepositoryError> {
        let now = chrono::Utc::now();
        let now_secs = now.timestamp();
        let retention = i64::try_from(INBOX_RETENTION.as_secs()).unwrap_or(i64::MAX);
        let record = InboxItem {
            pk: format!("inbox#{}#{}", key.consumer, key.message_id),
            consumer: key.consumer.to_owned(),
            message_id: key.message_id.to_owned(),
            event_id: id.to_string(),
            seats,
            received_at: millis(now),
            ttl: now_secs.saturating_add(retention),
        };
        let writes = vec![
            // A record past its time to live counts as absent, whether or not DynamoDB removed it.
            self.store.put(
                to_item(&record)?,
                Some("attribute_not_exists(#pk) OR #ttl < :now"),
                &Expr::new()
                    .name("#pk", "pk")
                    .name("#ttl", "ttl")
                    .value(":now", n(now_secs)),
            )?,
            self.store.update(
                &event_key(id),
                "ADD #booked :seats",
                Some("attribute_exists(#pk)"),
                &Expr::new()
                    .name("#booked", "booked")
                    .name("#pk", "pk")
                    .value(":seats", n(seats)),
            )?,
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok(SeatChange::Applied),
            // An unknown event wins over a duplicate, as in memory; it leaves no record.
            Err(refused) if refused.refused(1) => Ok(SeatChange::UnknownEvent),
            Err(refused) if refused.refused(0) => Ok(SeatChange::Duplicate),
            Err(error) => Err(error.into_store("record booked seats")),
        }
    }

    async fn list(&self, page: PageRequest) -> Result<Vec<Event>, RepositoryError> {
        let after = page.after.map(|id| id.to_string());
        let range = after.as_deref().map_or(Range::All, Range::After);
        let items = self
            .store
            .query(Index::G1, EVENTS, range, page.limit)
            .await?;
        events(items)
    }

    async fn update(
        &self,
        event: &Event,
        announce: &OutboxMessage,
    ) -> Result<bool, RepositoryError> {
        let Some(previous) = event.revision.checked_sub(1) else {
            return Ok(false);
        };
        let mut fields = to_item(&EventFields::from(event))?;
        // The seats booked are the store's: never overwritten.
        fields.remove("booked");
        fields.remove("id");
        fields.insert("g2pk".to_owned(), s(name_key(&event.name)));
        let expr = Expr::new()
            .name("#rev", "revision")
            .value(":prev", n(previous));
        let (update, expr) = overwrite(fields, &["hall", "organiser", "cancelled"], expr);
        let writes = vec![
            // A missing event has no revision: the condition fails, nothing is created.
            self.store
                .update(&event_key(event.id), &update, Some("#rev = :prev"), &expr)?,
            super::outbox::stage(&self.store, announce)?,
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok(true),
            Err(refused) if refused.refused(0) => Ok(false),
            Err(error) => Err(error.into_store("update event")),
        }
    }
}
