//! DynamoDB adapters (the official `aws-sdk-dynamodb`), for every repository port.
//!
//! **One table per service** (single-table design; default `myevents-events` and
//! `myevents-bookings`, see [`DynamoConfig`]), keyed by one string attribute `pk` that names the
//! item's kind and id (`location#<id>`, `event#<id>`, `inventory#<event id>`, `booking#<id>`,
//! `hold#<booking id>`, `waitlist#<entry id>`, `outbox#<message id>`, `inbox#<consumer>#<message
//! id>`, `idempotency#<user>#<key>`, `relay#outbox`). Two global secondary indexes, `gsi1` (`g1pk`,
//! `g1sk`) and `gsi2` (`g2pk`, `g2sk`), are shared by the kinds (index overloading): each item sets
//! the attributes of the listings it belongs to and leaves the others out (sparse indexes), so a
//! listing costs in proportion to what it returns:
//!
//! | listing | index | partition | sort |
//! | --- | --- | --- | --- |
//! | locations, in id order (not deleted) | `gsi1` | `locations` | id |
//! | events, in id order | `gsi1` | `events` | id |
//! | events by name (oldest first) | `gsi2` | `name#<name>` | id |
//! | pending outbox messages, stored order | `gsi1` | `outbox` | message id (UUID v7) |
//! | an event's bookings | `gsi1` | `event#<event id>` | booking id |
//! | a user's bookings | `gsi2` | `user#<user id>` | booking id |
//! | reservation records by age, buyers' holds by lapse | `gsi1` | `reservations`, `buyer-holds` | time (ms, 15 digits) `#` booking id |
//! | an event's seat holds | `gsi2` | `holds#<event id>` | booking id |
//! | a user's waitlist entries | `gsi2` | `waiting#<user id>` | time joined (ms) `#` entry id |
//! | cancelled events not settled | `gsi1` | `unsettled` | event id |
//! | events with a waitlist | `gsi2` | `waitlists` | event id |
//!
//! Why one table rather than one per aggregate: every write that must be atomic spans kinds (a
//! booking, the hold it settles and its outbox message; an event and its location's guard), and a
//! `TransactWriteItems` spans tables as well, but one table is one thing to create, to grant
//! (IAM), to back up and to watch; the ids' prefixes keep the kinds apart.
//!
//! **Consistency.** Reads by id are strongly consistent; a listing reads a global secondary index,
//! which DynamoDB updates asynchronously (typically within a second): an item stored a moment ago
//! may be missing from a listing, never from a read by id. Every write that announces something
//! stores its outbox message in the same `TransactWriteItems`. Seats are taken by a conditional
//! update (`remaining >= :seats`), so they are never oversold under any concurrency; writes that
//! read first (a waitlist, a cancellation) are optimistic: conditional on the `version` they read,
//! retried when another write came first. Transactions on one item conflict with each other
//! (`TransactionConflict`) and are retried with backoff, so a hot event's bookings are serialised on
//! its inventory item. Consumed messages are recorded in an inbox item (TTL attribute `ttl`, epoch
//! seconds, [`crate::INBOX_RETENTION`]) in the same transaction as their effect.
//!
//! **Start-up.** [`DynamoStore::start`] creates the table (on-demand capacity, with its indexes and
//! TTL) when it is missing, or with `DYNAMODB_TABLE_SETUP=check` only checks that it has the key and
//! indexes above and says what is missing. While DynamoDB does not answer this goes on in the
//! background with backoff; meanwhile every call answers [`RepositoryError::Unavailable`] and the
//! health check says why.
//!
//! **Local servers.** The tests run against moto in server mode, which differs from DynamoDB:
//! its indexes are updated with the write (DynamoDB's lag behind), its transactions never conflict
//! (DynamoDB's do under concurrency: the retry path is exercised only by DynamoDB itself), and it
//! enforces neither capacity nor throttling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};
use backon::{ExponentialBuilder, Retryable};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Cause, RepositoryError, StoreHealth};

mod bookings;
mod events;
mod idempotency;
mod items;
mod locations;
mod outbox;
mod table;

pub use crate::config::{DynamoConfig, TableSetup};
pub use bookings::DynamoBookingRepository;
pub use events::DynamoEventRepository;
pub use idempotency::DynamoIdempotencyRepository;
pub use locations::DynamoLocationRepository;
pub use outbox::DynamoOutbox;

/// An item as the SDK holds it: attribute name to value.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// The global secondary index a listing reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    /// `gsi1` (`g1pk`, `g1sk`).
    G1,
    /// `gsi2` (`g2pk`, `g2sk`).
    G2,
}

impl Index {
    /// Its name (DynamoDB wants at least 3 characters).
    fn name(self) -> &'static str {
        match self {
            Self::G1 => "gsi1",
            Self::G2 => "gsi2",
        }
    }

    fn keys(self) -> (&'static str, &'static str) {
        match self {
            Self::G1 => ("g1pk", "g1sk"),
            Self::G2 => ("g2pk", "g2sk"),
        }
    }
}

/// Which part of a listing's partition to read, by sort key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Range<'a> {
    /// All of it.
    All,
    /// Sort keys above this one (the next page).
    After(&'a str),
    /// Sort keys below this one.
    Before(&'a str),
}

/// The names and values an expression refers to (`#name`, `:value`). Write every attribute as
/// `#attribute`: its name is then given without being listed (see [`Expr::names`]).
#[derive(Debug, Default, Clone)]
pub(crate) struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// No names, no values.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// `#placeholder` stands for attribute `name`.
    pub(crate) fn name(mut self, placeholder: &str, name: &str) -> Self {
        self.names.insert(placeholder.to_owned(), name.to_owned());
        self
    }

    /// `:placeholder` stands for `value`.
    pub(crate) fn value(mut self, placeholder: &str, value: AttributeValue) -> Self {
        self.values.insert(placeholder.to_owned(), value);
        self
    }

    /// The names `expressions` use: each `#word` stands for the placeholder given by
    /// [`Expr::name`], or else for the attribute `word` (so that every attribute can be written as
    /// `#word`, reserved words such as `capacity`, `name` or `ttl` included). DynamoDB refuses
    /// names an expression does not use, so only those are given.
    fn names(&self, expressions: &[Option<&str>]) -> Option<HashMap<String, String>> {
        let mut used = HashMap::new();
        for expression in expressions.iter().flatten() {
            let mut rest = *expression;
            while let Some(at) = rest.find('#') {
                let token: String = rest[at..]
                    .chars()
                    .enumerate()
                    .take_while(|(i, c)| *i == 0 || c.is_ascii_alphanumeric() || *c == '_')
                    .map(|(_, c)| c)
                    .collect();
                rest = &rest[at + token.len()..];
                if token.len() > 1 {
                    let name = self
                        .names
                        .get(&token)
                        .cloned()
                        .unwrap_or_else(|| token[1..].to_owned());
                    used.insert(token, name);
                }
            }
        }
        (!used.is_empty()).then_some(used)
    }

    fn values(&self) -> Option<HashMap<String, AttributeValue>> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// A string value.
pub(crate) fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

/// A number value.
pub(crate) fn n(number: impl std::fmt::Display) -> AttributeValue {
    AttributeValue::N(number.to_string())
}

/// The number attribute `name` of `item` (0 when absent).
///
/// # Errors
/// [`RepositoryError::Unexpected`] when it is not a whole number.
pub(crate) fn number(item: &Item, name: &str) -> Result<i64, RepositoryError> {
    match item.get(name) {
        None => Ok(0),
        Some(value) => value
            .as_n()
            .ok()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                RepositoryError::Unexpected(Cause::msg(format!("stored item has a bad {name}")))
            }),
    }
}

/// `value` as an item.
///
/// # Errors
/// [`RepositoryError::Unexpected`] when it cannot be one (never for the items here).
pub(crate) fn to_item<T: Serialize>(value: &T) -> Result<Item, RepositoryError> {
    serde_dynamo::to_item(value).map_err(|e| RepositoryError::Unexpected(Cause::new(e)))
}

/// The item as `T`.
///
/// # Errors
/// [`RepositoryError::Unexpected`] naming the item when it is not one.
pub(crate) fn from_item<T: DeserializeOwned>(item: Item) -> Result<T, RepositoryError> {
    let pk = item
        .get("pk")
        .and_then(|v| v.as_s().ok())
        .cloned()
        .unwrap_or_default();
    serde_dynamo::from_item(item)
        .map_err(|e| RepositoryError::Unexpected(Cause::context(format!("stored item {pk}"), e)))
}

/// A sort key that orders by time: milliseconds since the Unix epoch in 15 digits, then `#` and
/// `id`.
pub(crate) fn time_key(at: chrono::DateTime<chrono::Utc>, id: &str) -> String {
    format!("{:015}#{id}", at.timestamp_millis().max(0))
}

/// Why a `TransactWriteItems` did not apply.
#[derive(Debug)]
pub(crate) enum TxError {
    /// DynamoDB cancelled it: for each write in the order given, whether its condition failed
    /// (`ConditionalCheckFailed`), and the item as it was for a write that asked for it (see
    /// [`DynamoStore::update_or_old`]). Nothing was written.
    Refused(Vec<bool>, Vec<Option<Item>>),
    /// The store failed (nothing was written, or the outcome is unknown after a time-out).
    Store(RepositoryError),
}

impl From<RepositoryError> for TxError {
    fn from(error: RepositoryError) -> Self {
        Self::Store(error)
    }
}

impl TxError {
    /// Whether write `at` failed its condition.
    pub(crate) fn refused(&self, at: usize) -> bool {
        matches!(self, Self::Refused(failed, _) if failed.get(at).copied().unwrap_or(false))
    }

    /// The item write `at` found when its condition failed, if it asked for it and the item
    /// exists.
    pub(crate) fn old_item(&self, at: usize) -> Option<&Item> {
        match self {
            Self::Refused(_, items) => items.get(at).and_then(Option::as_ref),
            Self::Store(_) => None,
        }
    }

    /// The store's error for a refusal nobody expected.
    pub(crate) fn into_store(self, what: &str) -> RepositoryError {
        match self {
            Self::Store(error) => error,
            Self::Refused(failed, _) => RepositoryError::Unexpected(Cause::msg(format!(
                "{what}: DynamoDB refused the transaction (conditions failed: {failed:?})"
            ))),
        }
    }
}

/// The codes of errors that may pass: throttling, capacity, DynamoDB's own trouble.
const TRANSIENT: [&str; 6] = [
    "ThrottlingException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
];

/// A failed call as a repository error: `Unavailable` when it may pass (no answer, a time-out,
/// throttling, a 5xx answer, a missing table), `Unexpected` otherwise.
pub(crate) fn map_sdk<E>(what: &str, error: SdkError<E, HttpResponse>) -> RepositoryError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let transient = match &error {
        // A 5xx is DynamoDB's (or a stand-in's) own trouble, whatever its body says.
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            TRANSIENT.contains(&code)
                || code == "ResourceNotFoundException"
                || service.raw().status().is_server_error()
        }
        SdkError::ConstructionFailure(_) => false,
        _ => true,
    };
    let cause = match &error {
        SdkError::ServiceError(service) => Cause::msg(format!(
            "{what} ({}): {}",
            service.err().code().unwrap_or("?"),
            service.err().message().unwrap_or("no message")
        )),
        _ => Cause::context(what, error),
    };
    if transient {
        RepositoryError::Unavailable(cause)
    } else {
        RepositoryError::Unexpected(cause)
    }
}

/// A builder's complaint (a missing required field: never for the requests here).
fn built<T, E: std::error::Error + Send + Sync + 'static>(
    result: Result<T, E>,
) -> Result<T, RepositoryError> {
    result.map_err(|e| RepositoryError::Unexpected(Cause::new(e)))
}

/// A client of one table, and whether its start-up work (the table created or checked) is done.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: Arc<str>,
    setup: TableSetup,
    /// `None` once the table is ready; until then why not.
    pending: Arc<Mutex<Option<String>>>,
    /// Whether a task is making the table ready.
    preparing: Arc<AtomicBool>,
}

impl DynamoStore {
    /// Makes the client from the SDK's default chain and the overrides of `config`, then creates or
    /// checks the table (see [`TableSetup`]). While DynamoDB does not answer, or the table is not
    /// ready, this goes on in the background with backoff (up to 30 s between attempts) and every
    /// call answers [`RepositoryError::Unavailable`].
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] when no region is configured, or the system has no CA
    /// certificate for an HTTPS endpoint.
    pub async fn start(config: &DynamoConfig) -> Result<Self, RepositoryError> {
        let shared = myevents_aws::sdk_config(&myevents_aws::AwsSettings {
            endpoint: config.endpoint.clone(),
            region: config.region.clone(),
            operation_timeout: config.operation_timeout,
        })
        .await
        .map_err(RepositoryError::Unexpected)?;
        let store = Self {
            client: Client::new(&shared),
            table: Arc::from(config.table.as_str()),
            setup: config.setup,
            pending: Arc::new(Mutex::new(Some(format!(
                "the DynamoDB table {} is not checked yet",
                config.table
            )))),
            preparing: Arc::new(AtomicBool::new(false)),
        };
        match table::prepare(&store, store.setup).await {
            Ok(()) => store.set_pending(None),
            Err(reason) => {
                tracing::error!(table = %store.table, %reason, "DynamoDB table not ready; retrying in the background");
                store.set_pending(Some(reason));
                store.prepare_in_background();
            }
        }
        Ok(store)
    }

    /// Makes the table ready in a task of its own, retrying with backoff (up to 30 s between
    /// attempts) until it is; does nothing while such a task runs.
    fn prepare_in_background(&self) {
        if self.preparing.swap(true, Ordering::AcqRel) {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            let attempt = || async { table::prepare(&store, store.setup).await };
            let outcome = attempt
                .retry(
                    ExponentialBuilder::default()
                        .with_min_delay(Duration::from_millis(500))
                        .with_max_delay(Duration::from_secs(30))
                        .without_max_times(),
                )
                .notify(|reason: &String, after| {
                    tracing::warn!(table = %store.table, %reason, retry_in = ?after, "DynamoDB table not ready");
                    store.set_pending(Some(reason.clone()));
                })
                .await;
            if outcome.is_ok() {
                tracing::info!(table = %store.table, "DynamoDB table ready");
                store.set_pending(None);
            }
            store.preparing.store(false, Ordering::Release);
        });
    }

    /// A failed call as a repository error (see [`map_sdk`]). A table found missing (deleted, or a
    /// local server restarted empty) makes the store unready and creates it again (or, with
    /// `DYNAMODB_TABLE_SETUP=check`, waits until the deployment has).
    pub(crate) fn sdk_error<E>(
        &self,
        what: &str,
        error: SdkError<E, HttpResponse>,
    ) -> RepositoryError
    where
        E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    {
        let gone = matches!(&error, SdkError::ServiceError(service)
            if service.err().code() == Some("ResourceNotFoundException"));
        if gone {
            let reason = format!("the DynamoDB table {} is gone", self.table);
            tracing::error!(table = %self.table, "{reason}; making it ready again");
            self.set_pending(Some(reason));
            self.prepare_in_background();
        }
        map_sdk(what, error)
    }

    fn set_pending(&self, reason: Option<String>) {
        *self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = reason;
    }

    /// The table's name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The SDK client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// `Ok` once the table is ready.
    fn ready(&self) -> Result<(), RepositoryError> {
        match &*self
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            None => Ok(()),
            Some(reason) => Err(RepositoryError::Unavailable(Cause::msg(reason.clone()))),
        }
    }

    /// The item `pk`, read strongly consistent.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    pub(crate) async fn get(&self, pk: &str) -> Result<Option<Item>, RepositoryError> {
        self.ready()?;
        let out = self
            .client
            .get_item()
            .table_name(self.table.as_ref())
            .key("pk", s(pk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    /// The attributes `projection` names (a projection expression, e.g. `#remaining, #holds.#b`)
    /// of item `pk`, read strongly consistent: a read costs in proportion to what it returns.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    pub(crate) async fn get_projected(
        &self,
        pk: &str,
        projection: &str,
        expr: &Expr,
    ) -> Result<Option<Item>, RepositoryError> {
        self.ready()?;
        let out = self
            .client
            .get_item()
            .table_name(self.table.as_ref())
            .key("pk", s(pk))
            .projection_expression(projection)
            .set_expression_attribute_names(expr.names(&[Some(projection)]))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    /// The item `pk` as `T`, read strongly consistent.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure or an item that is not a `T`.
    pub(crate) async fn get_as<T: DeserializeOwned>(
        &self,
        pk: &str,
    ) -> Result<Option<T>, RepositoryError> {
        self.get(pk).await?.map(from_item).transpose()
    }

    /// Up to `limit` items of partition `pk` of `index` within `range`, in sort key order (reversed
    /// with `descending`), reading page after page until `limit` or the end.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    pub(crate) async fn query(
        &self,
        index: Index,
        pk: &str,
        range: Range<'_>,
        limit: usize,
    ) -> Result<Vec<Item>, RepositoryError> {
        self.ready()?;
        let (pk_name, sk_name) = index.keys();
        let mut condition = "#pk = :pk".to_owned();
        let mut expr = Expr::new().name("#pk", pk_name).value(":pk", s(pk));
        match range {
            Range::All => {}
            Range::After(sk) => {
                condition.push_str(" AND #sk > :sk");
                expr = expr.name("#sk", sk_name).value(":sk", s(sk));
            }
            Range::Before(sk) => {
                condition.push_str(" AND #sk < :sk");
                expr = expr.name("#sk", sk_name).value(":sk", s(sk));
            }
        }
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let want = limit.saturating_sub(items.len());
            if want == 0 {
                break;
            }
            let out = self
                .client
                .query()
                .table_name(self.table.as_ref())
                .index_name(index.name())
                .key_condition_expression(&condition)
                .set_expression_attribute_names(expr.names(&[Some(&condition)]))
                .set_expression_attribute_values(expr.values())
                .limit(i32::try_from(want).unwrap_or(i32::MAX))
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.sdk_error("Query", e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(items)
    }

    /// How many items partition `pk` of `index` holds (all of them, page after page).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    pub(crate) async fn count(&self, index: Index, pk: &str) -> Result<u64, RepositoryError> {
        self.ready()?;
        let (pk_name, _) = index.keys();
        let mut total = 0u64;
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(self.table.as_ref())
                .index_name(index.name())
                .key_condition_expression("#pk = :pk")
                .expression_attribute_names("#pk", pk_name)
                .expression_attribute_values(":pk", s(pk))
                .select(aws_sdk_dynamodb::types::Select::Count)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.sdk_error("Query (count)", e))?;
            total += u64::try_from(out.count).unwrap_or(0);
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        Ok(total)
    }

    /// A write of `item`, when `condition` holds (`None`: always).
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] when the request cannot be built (never for these).
    pub(crate) fn put(
        &self,
        item: Item,
        condition: Option<&str>,
        expr: &Expr,
    ) -> Result<TransactWriteItem, RepositoryError> {
        let put = built(
            Put::builder()
                .table_name(self.table.as_ref())
                .set_item(Some(item))
                .set_condition_expression(condition.map(str::to_owned))
                .set_expression_attribute_names(expr.names(&[condition]))
                .set_expression_attribute_values(expr.values())
                .build(),
        )?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// An update of item `pk` by `update` (an update expression), when `condition` holds.
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] when the request cannot be built (never for these).
    pub(crate) fn update(
        &self,
        pk: &str,
        update: &str,
        condition: Option<&str>,
        expr: &Expr,
    ) -> Result<TransactWriteItem, RepositoryError> {
        let update = built(
            Update::builder()
                .table_name(self.table.as_ref())
                .key("pk", s(pk))
                .update_expression(update)
                .set_condition_expression(condition.map(str::to_owned))
                .set_expression_attribute_names(expr.names(&[Some(update), condition]))
                .set_expression_attribute_values(expr.values())
                .build(),
        )?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// As [`DynamoStore::update`], and when `condition` fails the item as it was comes back with
    /// the refusal ([`TxError::old_item`]): what the caller would otherwise read again.
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] when the request cannot be built (never for these).
    pub(crate) fn update_or_old(
        &self,
        pk: &str,
        update: &str,
        condition: &str,
        expr: &Expr,
    ) -> Result<TransactWriteItem, RepositoryError> {
        let mut write = self.update(pk, update, Some(condition), expr)?;
        if let Some(update) = write.update.as_mut() {
            update.return_values_on_condition_check_failure =
                Some(aws_sdk_dynamodb::types::ReturnValuesOnConditionCheckFailure::AllOld);
        }
        Ok(write)
    }

    /// A deletion of item `pk`, when `condition` holds.
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] when the request cannot be built (never for these).
    pub(crate) fn delete(
        &self,
        pk: &str,
        condition: Option<&str>,
        expr: &Expr,
    ) -> Result<TransactWriteItem, RepositoryError> {
        let delete = built(
            Delete::builder()
                .table_name(self.table.as_ref())
                .key("pk", s(pk))
                .set_condition_expression(condition.map(str::to_owned))
                .set_expression_attribute_names(expr.names(&[condition]))
                .set_expression_attribute_values(expr.values())
                .build(),
        )?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// A check that `condition` holds for item `pk`, writing nothing.
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] when the request cannot be built (never for these).
    pub(crate) fn check(
        &self,
        pk: &str,
        condition: &str,
        expr: &Expr,
    ) -> Result<TransactWriteItem, RepositoryError> {
        let check = built(
            ConditionCheck::builder()
                .table_name(self.table.as_ref())
                .key("pk", s(pk))
                .condition_expression(condition)
                .set_expression_attribute_names(expr.names(&[Some(condition)]))
                .set_expression_attribute_values(expr.values())
                .build(),
        )?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }

    /// Writes `item` when `condition` holds (one `PutItem`): `false` when it did not (nothing
    /// written).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    pub(crate) async fn put_if(
        &self,
        item: Item,
        condition: &str,
        expr: &Expr,
    ) -> Result<bool, RepositoryError> {
        self.ready()?;
        let outcome = self
            .client
            .put_item()
            .table_name(self.table.as_ref())
            .set_item(Some(item))
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names(&[Some(condition)]))
            .set_expression_attribute_values(expr.values())
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(error) => Err(self.sdk_error("PutItem", error)),
        }
    }

    /// Updates item `pk` by `update` when `condition` holds (one `UpdateItem`; a missing item
    /// is created only when `condition` allows): `false` when it did not (nothing written).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    pub(crate) async fn update_if(
        &self,
        pk: &str,
        update: &str,
        condition: &str,
        expr: &Expr,
    ) -> Result<bool, RepositoryError> {
        self.ready()?;
        let outcome = self
            .client
            .update_item()
            .table_name(self.table.as_ref())
            .key("pk", s(pk))
            .update_expression(update)
            .condition_expression(condition)
            .set_expression_attribute_names(expr.names(&[Some(update), Some(condition)]))
            .set_expression_attribute_values(expr.values())
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(SdkError::ServiceError(service))
                if service.err().is_conditional_check_failed_exception() =>
            {
                Ok(false)
            }
            Err(error) => Err(self.sdk_error("UpdateItem", error)),
        }
    }

    /// Applies `writes` all or none (`TransactWriteItems`, at most 100). A cancellation for a
    /// conflict with another transaction on the same items (`TransactionConflict`) is retried with
    /// backoff (about ten times within 3 s), as the same request changes the same things.
    ///
    /// # Errors
    /// [`TxError::Refused`] with the writes whose condition failed; [`TxError::Store`] on store
    /// failure.
    pub(crate) async fn transact(&self, writes: Vec<TransactWriteItem>) -> Result<(), TxError> {
        self.ready()?;
        let attempt = || async {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(writes.clone()))
                .send()
                .await;
            match result {
                Ok(_) => Ok(()),
                Err(SdkError::ServiceError(service))
                    if service.err().is_transaction_canceled_exception() =>
                {
                    let (reasons, items): (Vec<String>, Vec<Option<Item>>) = match service.err() {
                        aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(e) => e
                            .cancellation_reasons()
                            .iter()
                            .map(|r| (r.code().unwrap_or("None").to_owned(), r.item().cloned()))
                            .unzip(),
                        _ => (Vec::new(), Vec::new()),
                    };
                    if reasons.iter().any(|code| code == "TransactionConflict") {
                        return Err(Attempt::Conflict);
                    }
                    if reasons.iter().any(|code| code == "ConditionalCheckFailed") {
                        return Err(Attempt::Done(TxError::Refused(
                            reasons
                                .iter()
                                .map(|code| code == "ConditionalCheckFailed")
                                .collect(),
                            items,
                        )));
                    }
                    Err(Attempt::Done(TxError::Store(RepositoryError::Unavailable(
                        Cause::msg(format!("TransactWriteItems cancelled: {reasons:?}")),
                    ))))
                }
                Err(SdkError::ServiceError(service))
                    if service.err().is_transaction_in_progress_exception() =>
                {
                    Err(Attempt::Conflict)
                }
                Err(error) => Err(Attempt::Done(TxError::Store(
                    self.sdk_error("TransactWriteItems", error),
                ))),
            }
        };
        attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(10))
                    .with_max_delay(Duration::from_millis(500))
                    .with_jitter()
                    .with_max_times(10),
            )
            .when(|outcome| matches!(outcome, Attempt::Conflict))
            .await
            .map_err(|outcome| match outcome {
                Attempt::Done(error) => error,
                Attempt::Conflict => TxError::Store(RepositoryError::Unavailable(Cause::msg(
                    "TransactWriteItems: conflicting transactions on the same items went on for too long",
                ))),
            })
    }

    /// Deletes every item (for tests that share a table).
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    pub async fn clear(&self) -> Result<(), RepositoryError> {
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .scan()
                .table_name(self.table.as_ref())
                .projection_expression("pk")
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| self.sdk_error("Scan", e))?;
            for item in out.items.unwrap_or_default() {
                if let Some(pk) = item.get("pk") {
                    self.client
                        .delete_item()
                        .table_name(self.table.as_ref())
                        .key("pk", pk.clone())
                        .send()
                        .await
                        .map_err(|e| self.sdk_error("DeleteItem", e))?;
                }
            }
            match out.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(()),
            }
        }
    }
}

/// One attempt of a transaction: a conflict to retry, or the outcome.
#[derive(Debug)]
enum Attempt {
    Conflict,
    Done(TxError),
}

impl std::fmt::Display for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Conflict => f.write_str("transaction conflict"),
            Self::Done(error) => write!(f, "{error:?}"),
        }
    }
}

#[async_trait]
impl StoreHealth for DynamoStore {
    async fn check(&self) -> Result<(), RepositoryError> {
        self.ready()?;
        self.client
            .describe_table()
            .table_name(self.table.as_ref())
            .send()
            .await
            .map_err(|e| self.sdk_error("DescribeTable", e))?;
        Ok(())
    }
}
