//! Locations in DynamoDB.
//!
//! Item `location#<id>`: the location's fields ([`LocationFields`]: `id`, `name`, `address`,
//! `country`, `open_time`, `close_time`, `halls`, `organiser`?, `revision`), `version` (goes up
//! with every write to the item, an event inserted at the location included), `event_ids` (a
//! string set: the ids of the events created at the location, added by
//! [`super::DynamoEventRepository`]'s insert) and, while the location is not deleted, `g1pk`
//! (`locations`) and `g1sk` (its id). A deletion leaves a tombstone: `deleted_at` (ms) set, out of
//! `gsi1`; it is never read, listed nor updated again, and its id is not taken again.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::AttributeValue;
use myevents_domain::id::{EventId, LocationId};
use myevents_domain::location::Location;
use myevents_domain::messages::OutboxMessage;
use serde::{Deserialize, Serialize};

use super::events::{EventItem, event_key};
use super::items::{LocationFields, corrupt, millis};
use super::{DynamoStore, Expr, Index, Item, Range, from_item, n, to_item};
use crate::{Cause, LocationDeletion, LocationRepository, PageRequest, RepositoryError};

/// `gsi1` partition of the locations not deleted.
const LOCATIONS: &str = "locations";

/// The string set attribute of a location item naming the events created there.
pub(crate) const EVENT_IDS: &str = "event_ids";

/// How many times a deletion reads again when an event was inserted at the location (or the
/// location changed) between its read and its write.
const DELETE_ATTEMPTS: usize = 10;

/// The key of location `id`.
pub(crate) fn location_key(id: LocationId) -> String {
    format!("location#{id}")
}

/// A stored location (`event_ids` is read by hand: see [`take_event_ids`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LocationItem {
    pk: String,
    #[serde(flatten)]
    location: LocationFields,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deleted_at: Option<i64>,
    #[serde(default)]
    version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    g1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    g1sk: Option<String>,
}

impl LocationItem {
    /// A new location's item, listed, at version 0.
    fn new(location: &Location) -> Self {
        let fields = LocationFields::from(location);
        Self {
            pk: location_key(location.id),
            g1pk: Some(LOCATIONS.to_owned()),
            g1sk: Some(fields.id.clone()),
            location: fields,
            deleted_at: None,
            version: 0,
        }
    }

    /// The item as read, with the ids of the events created at the location.
    fn read(mut item: Item) -> Result<(Self, Vec<String>), RepositoryError> {
        let event_ids = take_event_ids(&mut item)?;
        Ok((from_item(item)?, event_ids))
    }
}

/// Removes the string set `event_ids` from `item` (serde would see a list) and returns it.
fn take_event_ids(item: &mut Item) -> Result<Vec<String>, RepositoryError> {
    match item.remove(EVENT_IDS) {
        None => Ok(Vec::new()),
        Some(AttributeValue::Ss(ids)) => Ok(ids),
        Some(_) => Err(corrupt("an event_ids attribute that is not a string set")),
    }
}

/// An update expression (`SET …` then, when some are due, `REMOVE …`) that overwrites an item's
/// attributes with `fields` (a struct's fields as [`to_item`] makes them) and removes each
/// attribute named in `optional` that `fields` lacks (an `Option` that is `None` now, left out by
/// `skip_serializing_if`). Names and values go into `expr` as `#f<i>`/`:f<i>` and `#o<i>`; other
/// clauses (`ADD …`) may follow the expression returned. Shared with the event repository.
pub(crate) fn overwrite(fields: Item, optional: &[&str], mut expr: Expr) -> (String, Expr) {
    let absent: Vec<&str> = optional
        .iter()
        .copied()
        .filter(|name| !fields.contains_key(*name))
        .collect();
    let mut fields: Vec<(String, AttributeValue)> = fields.into_iter().collect();
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    let mut set = Vec::with_capacity(fields.len());
    for (i, (name, value)) in fields.into_iter().enumerate() {
        let (name_at, value_at) = (format!("#f{i}"), format!(":f{i}"));
        set.push(format!("{name_at} = {value_at}"));
        expr = expr.name(&name_at, &name).value(&value_at, value);
    }
    let mut update = format!("SET {}", set.join(", "));
    if !absent.is_empty() {
        let mut remove = Vec::with_capacity(absent.len());
        for (i, name) in absent.into_iter().enumerate() {
            let name_at = format!("#o{i}");
            remove.push(name_at.clone());
            expr = expr.name(&name_at, name);
        }
        update.push_str(" REMOVE ");
        update.push_str(&remove.join(", "));
    }
    (update, expr)
}

/// Locations in DynamoDB (see the module's documentation for the item). Deleting one reads the
/// events created there (named by the location's `event_ids`), so the location repository and the
/// event repository must share one table.
#[derive(Debug, Clone)]
pub struct DynamoLocationRepository {
    store: DynamoStore,
}

impl DynamoLocationRepository {
    /// The repository on `store`'s table.
    pub fn new(store: &DynamoStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// The first event to come at a location (neither cancelled nor ended at `now_ms`, ms since
    /// the Unix epoch) among `event_ids`: the one that ends first (then the lowest id).
    async fn first_to_come(
        &self,
        event_ids: &[String],
        now_ms: i64,
    ) -> Result<Option<EventId>, RepositoryError> {
        let mut first: Option<(i64, EventId)> = None;
        for id in event_ids {
            let id = EventId::parse(id).map_err(|_| corrupt("an invalid event id in event_ids"))?;
            let Some(item) = self.store.get_as::<EventItem>(&event_key(id)).await? else {
                continue;
            };
            let event = &item.event;
            if event.cancelled.is_some() || event.end <= now_ms {
                continue;
            }
            let candidate = (event.end, id);
            if first.is_none_or(|best| candidate < best) {
                first = Some(candidate);
            }
        }
        Ok(first.map(|(_, id)| id))
    }
}

#[async_trait]
impl LocationRepository for DynamoLocationRepository {
    async fn insert(
        &self,
        location: &Location,
        announce: &OutboxMessage,
    ) -> Result<(), RepositoryError> {
        let writes = vec![
            self.store.put(
                to_item(&LocationItem::new(location))?,
                Some("attribute_not_exists(#pk)"),
                &Expr::new().name("#pk", "pk"),
            )?,
            super::outbox::stage(&self.store, announce)?,
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok(()),
            Err(refused) if refused.refused(0) => Err(RepositoryError::Conflict(Cause::msg(
                format!("location {}", location.id),
            ))),
            Err(error) => Err(error.into_store("insert location")),
        }
    }

    async fn get(&self, id: LocationId) -> Result<Option<Location>, RepositoryError> {
        let Some(item) = self.store.get(&location_key(id)).await? else {
            return Ok(None);
        };
        let (item, _) = LocationItem::read(item)?;
        if item.deleted_at.is_some() {
            return Ok(None);
        }
        item.location.into_domain().map(Some)
    }

    async fn list(&self, page: PageRequest) -> Result<Vec<Location>, RepositoryError> {
        let after = page.after.map(|id| id.to_string());
        let range = after.as_deref().map_or(Range::All, Range::After);
        let items = self
            .store
            .query(Index::G1, LOCATIONS, range, page.limit)
            .await?;
        let mut locations = Vec::with_capacity(items.len());
        for item in items {
            let (item, _) = LocationItem::read(item)?;
            // The index lags behind the table: a location deleted a moment ago may still be there.
            if item.deleted_at.is_none() {
                locations.push(item.location.into_domain()?);
            }
        }
        Ok(locations)
    }

    async fn update(
        &self,
        location: &Location,
        announce: &OutboxMessage,
    ) -> Result<bool, RepositoryError> {
        let Some(previous) = location.revision.checked_sub(1) else {
            return Ok(false);
        };
        let mut fields = to_item(&LocationFields::from(location))?;
        fields.remove("id");
        let expr = Expr::new()
            .name("#rev", "revision")
            .name("#del", "deleted_at")
            .name("#ver", "version")
            .value(":prev", n(previous))
            .value(":one", n(1));
        let (update, expr) = overwrite(fields, &["organiser"], expr);
        let update = format!("{update} ADD #ver :one");
        let writes = vec![
            self.store.update(
                &location_key(location.id),
                &update,
                Some("#rev = :prev AND attribute_not_exists(#del)"),
                &expr,
            )?,
            super::outbox::stage(&self.store, announce)?,
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok(true),
            Err(refused) if refused.refused(0) => Ok(false),
            Err(error) => Err(error.into_store("update location")),
        }
    }

    async fn delete(
        &self,
        id: LocationId,
        revision: u64,
        announce: &OutboxMessage,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<LocationDeletion, RepositoryError> {
        let key = location_key(id);
        for _ in 0..DELETE_ATTEMPTS {
            let Some(item) = self.store.get(&key).await? else {
                return Ok(LocationDeletion::Stale);
            };
            let (item, event_ids) = LocationItem::read(item)?;
            if item.deleted_at.is_some() || item.location.revision != revision {
                return Ok(LocationDeletion::Stale);
            }
            if let Some(event) = self.first_to_come(&event_ids, millis(now)).await? {
                return Ok(LocationDeletion::InUse(event));
            }
            // Only over the version read: an event inserted at the location since then raised it.
            let expr = Expr::new()
                .name("#del", "deleted_at")
                .name("#rev", "revision")
                .name("#ver", "version")
                .name("#g1pk", "g1pk")
                .name("#g1sk", "g1sk")
                .value(":at", n(millis(now)))
                .value(":next", n(revision.saturating_add(1)))
                .value(":rev", n(revision))
                .value(":seen", n(item.version))
                .value(":one", n(1));
            let writes = vec![
                self.store.update(
                    &key,
                    "SET #del = :at, #rev = :next REMOVE #g1pk, #g1sk ADD #ver :one",
                    Some("#ver = :seen AND #rev = :rev AND attribute_not_exists(#del)"),
                    &expr,
                )?,
                super::outbox::stage(&self.store, announce)?,
            ];
            match self.store.transact(writes).await {
                Ok(()) => return Ok(LocationDeletion::Deleted),
                Err(refused) if refused.refused(0) => {} // changed meanwhile: read again
                Err(error) => return Err(error.into_store("delete location")),
            }
        }
        Err(RepositoryError::Unavailable(Cause::msg(format!(
            "location {id} kept changing while it was being deleted; try again"
        ))))
    }
}
