//! MongoDB adapters (official `mongodb` driver, 3.x), for every repository port.
//!
//! Layout (lower-case field names, as the reference's mgo driver wrote them; ids are ObjectIds, times
//! BSON dates):
//! - event service database (default `myevents`): `locations {_id, name, address, country, opentime,
//!   closetime, halls: [{name, location, capacity}]}` and `events {_id, name, duration, startdate,
//!   enddate, location: {…}, hall?, capacity, booked}`
//!   and `inbox {_id: {consumer, message_id}, event_id, seats, received_at}` (TTL 30 days);
//! - booking service database (default `myevents_booking`): `inventory {_id: event id, name, capacity,
//!   remaining, holds: [{booking, attempt, user_id, seats, booked_at, held_at}]}` and `bookings {_id,
//!   event_id, user_id, seats, booked_at, hold}`.
//!
//! Transactional outbox: a message is embedded (`outbox: [{id, name, payload, occurred_at}]`) in the
//! very document whose insert it announces, so state and message are one single-document write.
//! [`MongoOutbox`] finds pending messages through sparse `outbox.id` indexes (`outbox_pending`: only
//! documents with a message waiting are in them), in stored order, and `$pull`s them once published,
//! a batch in one write. Which relay publishes is claimed in `outbox_claims {_id: outbox, relay,
//! until}` (`until` in milliseconds since the Unix epoch).
//!
//! Exactly-once effects of consumed messages: the event service writes its inbox record and the
//! effect on the event in one multi-document transaction, so MongoDB must run as a replica set (a
//! single-node one will do, `mongod --replSet rs0` then `rs.initiate()`; the SecantusDB test server
//! reports itself as one and runs the transaction). The booking service needs no transaction: a
//! booking holds its seats (seat hold) and is stored in two single-document writes, and the
//! reconciliation finishes what a crash interrupted in between (see [`MongoBookingRepository`]).
//!
//! A circuit breaker (see [`CircuitState`]) fails every call at once while the driver's monitoring
//! says the database is gone, instead of letting each wait out the server selection time-out.
//!
//! Writes use write concern `{w: "majority", j: true}` unless the connection string sets one: an
//! acknowledged booking survives a crash of the database.
//!
//! At start-up ([`MongoStore::start`]) a store whose service needs transactions
//! ([`Schema::transactions`]) first asks the server what it is (`hello`): a standalone server refuses
//! multi-document transactions (error 20, "Transaction numbers are only allowed on a replica set
//! member or mongos"), so the store then stays unready, logs one error naming the fix, and its
//! readiness check says the same, instead of failing every consumed message. Then indexes are
//! created idempotently. When the database is down (or not a replica set member yet, e.g. before
//! `rs.initiate()`) this goes on in the background with backoff, so it delays readiness instead of
//! crashing the service. Until it is done, every repository call answers
//! [`RepositoryError::Unavailable`]: no write ever races index creation. (Besides being tidy, this
//! avoids a hang of the SecantusDB test server, which deadlocks when `createIndexes` and inserts
//! create collections at the same time — see `scripts/repro/secantus_concurrent_create.py`.)

use crate::Cause;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use mongodb::bson::{Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, ClientOptions, IndexOptions, WriteConcern};
use mongodb::{Client, Database, IndexModel};

pub use crate::config::MongoConfig;
use crate::{RepositoryError, StoreHealth};

mod bookings;
mod circuit;
mod commands;
mod documents;
mod events;
mod idempotency;
mod outbox;

pub use bookings::MongoBookingRepository;
use circuit::Circuit;
pub use circuit::{CircuitMetrics, CircuitState};
pub use commands::CommandMetrics;
pub use events::{MongoEventRepository, MongoLocationRepository};
pub use idempotency::MongoIdempotencyRepository;
pub use outbox::MongoOutbox;

/// Maps a driver error to the port's error: duplicate key is `Conflict`; lost or unreachable servers
/// (and errors the server labels retryable) are `Unavailable`; the rest `Unexpected`.
pub(crate) fn map_error(error: mongodb::error::Error) -> RepositoryError {
    if let ErrorKind::Write(WriteFailure::WriteError(write)) = error.kind.as_ref()
        && write.code == 11000
    {
        return RepositoryError::Conflict(Cause::msg(write.message.clone()));
    }
    let unavailable = matches!(
        error.kind.as_ref(),
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::Shutdown
    ) || error.contains_label(mongodb::error::RETRYABLE_WRITE_ERROR)
        || error.contains_label(mongodb::error::TRANSIENT_TRANSACTION_ERROR);
    if unavailable {
        RepositoryError::Unavailable(Cause::new(error))
    } else {
        RepositoryError::Unexpected(Cause::new(error))
    }
}

/// A connection pool to one database, and whether its start-up work (topology check, indexes) is
/// done.
#[derive(Clone, Debug)]
pub struct MongoStore {
    database: Database,
    initialised: Arc<AtomicBool>,
    /// Why the server cannot serve this store (a standalone server where transactions are needed),
    /// while that holds.
    refusal: Arc<Mutex<Option<String>>>,
    /// The circuit breaker every call passes (see [`CircuitState`]).
    circuit: Arc<Circuit>,
}

/// What a service needs of its MongoDB: its indexes, and whether it runs multi-document transactions
/// (which only a replica set member or `mongos` gives). A `Vec<IndexSpec>` converts into a schema
/// without transactions.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    /// The indexes, created idempotently at start-up.
    pub indexes: Vec<IndexSpec>,
    /// Whether the service runs multi-document transactions: the store then refuses to become ready
    /// on a standalone server.
    pub transactions: bool,
}

impl From<Vec<IndexSpec>> for Schema {
    fn from(indexes: Vec<IndexSpec>) -> Self {
        Self {
            indexes,
            transactions: false,
        }
    }
}

/// Why a start-up attempt did not finish.
#[derive(Debug)]
enum StartUpError {
    /// The server did not answer or failed for a reason that may pass.
    Repository(RepositoryError),
    /// The server is not a replica set member or `mongos`, and the service needs transactions (the
    /// text says so and how to fix it). Checked again with backoff: a replica set member answers
    /// like a standalone server until `rs.initiate()`.
    NoTransactions(String),
}

impl std::fmt::Display for StartUpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Repository(error) => error.fmt(f),
            Self::NoTransactions(refusal) => f.write_str(refusal),
        }
    }
}

/// Whether a `hello` reply (<https://www.mongodb.com/docs/manual/reference/command/hello/>) comes
/// from a server that runs multi-document transactions: a replica set member (`setName`) or a
/// sharded cluster's router (`msg: "isdbgrid"`).
fn offers_transactions(hello: &Document) -> bool {
    hello.get_str("setName").is_ok() || hello.get_str("msg") == Ok("isdbgrid")
}

/// One index a service needs.
#[derive(Debug, Clone)]
pub struct IndexSpec {
    /// The collection.
    pub collection: &'static str,
    /// The keys, e.g. `{name: 1, _id: 1}`.
    pub keys: Document,
    /// Whether the keys are unique.
    pub unique: bool,
    /// For a TTL index on a date field: documents are removed this long after that date.
    pub expire_after: Option<Duration>,
    /// Whether documents without the keyed field are left out of the index (a sparse index), so
    /// that it holds only the documents that have it (e.g. pending outbox messages).
    pub sparse: bool,
    /// The index's name, when not the server's default (`<field>_<direction>_…`).
    pub name: Option<&'static str>,
    /// The name of an older index this one replaces (same keys, other options): dropped first when
    /// it exists, as the server refuses two indexes on the same keys.
    pub replaces: Option<&'static str>,
}

impl IndexSpec {
    fn plain(collection: &'static str, keys: Document) -> Self {
        Self {
            collection,
            keys,
            unique: false,
            expire_after: None,
            sparse: false,
            name: None,
            replaces: None,
        }
    }

    /// The index of the pending outbox messages of `collection`: sparse on `outbox.id`, so that it
    /// holds only documents with a message waiting, and finding them costs in proportion to them
    /// rather than to the whole collection. Replaces the plain `outbox.id_1` index of earlier
    /// versions.
    fn pending_outbox(collection: &'static str) -> Self {
        Self {
            sparse: true,
            name: Some("outbox_pending"),
            replaces: Some("outbox.id_1"),
            ..Self::plain(collection, doc! {"outbox.id": 1})
        }
    }
}

/// Server error codes meaning "no such index" (27) and "no such collection" (26).
const INDEX_NOT_FOUND: [i32; 2] = [26, 27];

impl MongoStore {
    /// Builds the client, checks that the server gives what `schema` needs (transactions) and
    /// creates its indexes. When the database does not answer within the server selection time-out,
    /// or cannot give transactions yet, this goes on in the background, retrying with backoff (up to
    /// 30 s between attempts), and the store answers `Unavailable` until it is done.
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] when the connection string is invalid.
    pub async fn start(
        config: &MongoConfig,
        schema: impl Into<Schema>,
    ) -> Result<Self, RepositoryError> {
        let schema = schema.into();
        let mut options = ClientOptions::parse(&config.url)
            .await
            .map_err(|e| RepositoryError::Unexpected(Cause::context("MONGO_URL", e)))?;
        options.max_pool_size = Some(config.max_pool_size);
        options.connect_timeout = Some(config.connect_timeout);
        options.server_selection_timeout = Some(config.server_selection_timeout);
        options.retry_writes = Some(config.retry_writes);
        options.heartbeat_freq = Some(config.heartbeat_frequency);
        let circuit = Circuit::new(&config.database, &CircuitMetrics::registered());
        options.sdam_event_handler = Some(circuit.handler());
        options.command_event_handler =
            Some(CommandMetrics::registered().handler(&config.database));
        options
            .app_name
            .get_or_insert_with(|| "myevents".to_owned());
        // An acknowledged booking must survive a crash: unless the connection string says otherwise,
        // writes are acknowledged by a majority and journaled.
        options.write_concern.get_or_insert_with(|| {
            WriteConcern::builder()
                .w(Acknowledgment::Majority)
                .journal(true)
                .build()
        });
        let client = Client::with_options(options).map_err(map_error)?;
        let store = Self {
            database: client.database(&config.database),
            initialised: Arc::new(AtomicBool::new(false)),
            refusal: Arc::default(),
            circuit,
        };
        match store.start_up(&schema).await {
            Ok(()) => store.mark_initialised(),
            Err(error) => {
                store.report(&error, true);
                let background = store.clone();
                tokio::spawn(async move { background.start_up_with_retry(schema).await });
            }
        }
        Ok(store)
    }

    /// The start-up work: the topology check where transactions are needed, then the indexes.
    async fn start_up(&self, schema: &Schema) -> Result<(), StartUpError> {
        if schema.transactions {
            let hello = self
                .database
                .client()
                .database("admin")
                .run_command(doc! {"hello": 1})
                .await
                .map_err(|e| StartUpError::Repository(map_error(e)))?;
            if !offers_transactions(&hello) {
                let refusal = "MongoDB is a standalone server (not a replica set member or mongos), which \
                     refuses the multi-document transactions this service records each consumed \
                     message and its effect with; run it as a replica set (a single-node one will \
                     do: `mongod --replSet rs0`, then `rs.initiate()`) and name the set in MONGO_URL \
                     (`?replicaSet=rs0`)"
                    .to_owned();
                return Err(StartUpError::NoTransactions(refusal));
            }
            *self.refusal.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        self.create_indexes(&schema.indexes)
            .await
            .map_err(StartUpError::Repository)
    }

    /// Logs a failed start-up attempt: a refusal once, at error level (it needs the operator), the
    /// rest as warnings; a refusal is kept for the readiness check.
    fn report(&self, error: &StartUpError, first: bool) {
        match error {
            StartUpError::NoTransactions(refusal) => {
                let mut kept = self.refusal.lock().unwrap_or_else(|e| e.into_inner());
                if kept.is_none() {
                    tracing::error!(database = %self.database.name(), "{refusal}");
                }
                *kept = Some(refusal.clone());
            }
            StartUpError::Repository(error) if first => {
                tracing::warn!(%error, "MongoDB not ready at start-up; retrying in the background");
            }
            StartUpError::Repository(error) => {
                tracing::warn!(%error, "MongoDB not reachable for start-up work, retrying");
            }
        }
    }

    async fn create_indexes(&self, indexes: &[IndexSpec]) -> Result<(), RepositoryError> {
        for index in indexes {
            let collection = self.database.collection::<Document>(index.collection);
            if let Some(old) = index.replaces {
                match collection.drop_index(old).await {
                    Ok(()) => tracing::info!(
                        collection = index.collection,
                        index = old,
                        "dropped an index a newer one replaces"
                    ),
                    Err(error)
                        if matches!(error.kind.as_ref(), ErrorKind::Command(c)
                            if INDEX_NOT_FOUND.contains(&c.code)) => {}
                    Err(error) => return Err(map_error(error)),
                }
            }
            let model = IndexModel::builder()
                .keys(index.keys.clone())
                .options(
                    IndexOptions::builder()
                        .unique(index.unique)
                        .expire_after(index.expire_after)
                        .sparse(index.sparse)
                        .name(index.name.map(str::to_owned))
                        .build(),
                )
                .build();
            collection.create_index(model).await.map_err(map_error)?;
        }
        Ok(())
    }

    fn mark_initialised(&self) {
        self.initialised.store(true, Ordering::Relaxed);
        tracing::info!(database = %self.database.name(), "MongoDB indexes ready");
    }

    async fn start_up_with_retry(&self, schema: Schema) {
        let result = (|| self.start_up(&schema))
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(30))
                    .without_max_times(),
            )
            .when(|e| {
                matches!(
                    e,
                    StartUpError::NoTransactions(_)
                        | StartUpError::Repository(RepositoryError::Unavailable(_))
                )
            })
            .notify(|error, _| self.report(error, false))
            .await;
        match result {
            Ok(()) => self.mark_initialised(),
            Err(error) => tracing::error!(%error, "the MongoDB start-up work failed"),
        }
    }

    /// `Ok` once the start-up work is done, while the circuit is closed: every repository call
    /// starts with this.
    ///
    /// # Errors
    /// [`RepositoryError::Unavailable`] before, saying why (the server cannot give transactions, or
    /// indexes are being created), and while the circuit is open.
    pub(crate) fn ensure_initialised(&self) -> Result<(), RepositoryError> {
        if self.is_initialised() {
            return self.circuit.check();
        }
        let refusal = self
            .refusal
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        Err(RepositoryError::Unavailable(Cause::msg(
            refusal.unwrap_or_else(|| {
                "MongoDB is not ready yet (indexes are being created)".to_owned()
            }),
        )))
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// A session of the database's client, for a multi-document transaction.
    ///
    /// # Errors
    /// The driver's failure, mapped as every store error is.
    pub(crate) async fn session(&self) -> Result<mongodb::ClientSession, RepositoryError> {
        self.database
            .client()
            .start_session()
            .await
            .map_err(map_error)
    }

    /// The state of the circuit breaker in front of the database.
    pub fn circuit_state(&self) -> CircuitState {
        self.circuit.state()
    }

    /// Whether the start-up work (topology check, indexes) is done.
    pub fn is_initialised(&self) -> bool {
        self.initialised.load(Ordering::Relaxed)
    }

    /// Drops the whole database (for tests that made their own).
    ///
    /// # Errors
    /// [`RepositoryError`] when the server refuses or cannot be reached.
    pub async fn drop_database(&self) -> Result<(), RepositoryError> {
        self.database.drop().await.map_err(map_error)
    }
}

#[async_trait]
impl StoreHealth for MongoStore {
    async fn check(&self) -> Result<(), RepositoryError> {
        self.circuit.check()?;
        self.database
            .run_command(doc! {"ping": 1})
            .await
            .map_err(map_error)?;
        self.ensure_initialised()
    }
}

/// The indexes of idempotency keys: unique per (user, key); removed once expired (TTL).
fn idempotency_indexes() -> [IndexSpec; 2] {
    [
        IndexSpec {
            unique: true,
            ..IndexSpec::plain(idempotency::IDEMPOTENCY_KEYS, doc! {"user": 1, "key": 1})
        },
        IndexSpec {
            expire_after: Some(Duration::ZERO),
            ..IndexSpec::plain(idempotency::IDEMPOTENCY_KEYS, doc! {"expires_at": 1})
        },
    ]
}

/// What the event service needs: its indexes ([`event_service_indexes`]) and transactions (each
/// consumed message's inbox record and its effect are one transaction).
pub fn event_service_schema() -> Schema {
    Schema {
        indexes: event_service_indexes(),
        transactions: true,
    }
}

/// The indexes of the event service: events by name (oldest first) and by location (by end, for
/// a location's deletion); pending outbox messages; the inbox's time to live; idempotency keys.
pub fn event_service_indexes() -> Vec<IndexSpec> {
    let mut indexes = vec![
        IndexSpec::plain(events::EVENTS, doc! {"name": 1, "_id": 1}),
        IndexSpec::plain(events::EVENTS, doc! {"location._id": 1, "enddate": 1}),
        IndexSpec {
            expire_after: Some(crate::INBOX_RETENTION),
            ..IndexSpec::plain(events::INBOX, doc! {"received_at": 1})
        },
        IndexSpec::pending_outbox(events::EVENTS),
        IndexSpec::pending_outbox(events::LOCATIONS),
    ];
    indexes.extend(idempotency_indexes());
    indexes
}

/// The indexes of the booking service: bookings by event and by user, in id order; pending outbox
/// messages; seat returns and seat holds a crash interrupted; waitlist entries by id and by user;
/// idempotency keys.
pub fn booking_service_indexes() -> Vec<IndexSpec> {
    let mut indexes = vec![
        IndexSpec::plain(bookings::BOOKINGS, doc! {"event_id": 1, "_id": 1}),
        IndexSpec::plain(bookings::BOOKINGS, doc! {"user_id": 1, "_id": 1}),
        IndexSpec::pending_outbox(bookings::BOOKINGS),
        IndexSpec::plain(bookings::BOOKINGS, doc! {"returning": 1, "cancelled_at": 1}),
        IndexSpec::plain(bookings::INVENTORY, doc! {"holds.held_at": 1}),
        IndexSpec::plain(bookings::INVENTORY, doc! {"waitlist.id": 1}),
        IndexSpec::plain(bookings::INVENTORY, doc! {"waitlist.user_id": 1}),
    ];
    indexes.extend(idempotency_indexes());
    indexes
}
