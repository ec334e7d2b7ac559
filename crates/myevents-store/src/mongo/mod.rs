//! MongoDB adapters (official `mongodb` driver, 3.x), for every repository port.
//!
//! Layout (lower-case field names, as the reference's mgo driver wrote them; ids are ObjectIds, times
//! BSON dates):
//! - event service database (default `myevents`): `locations {_id, name, address, country, opentime,
//!   closetime, halls: [{name, location, capacity}]}` and `events {_id, name, duration, startdate,
//!   enddate, location: {…}, hall?, capacity}`;
//! - booking service database (default `myevents_booking`): `inventory {_id: event id, name, capacity,
//!   remaining}` and `bookings {_id, event_id, user_id, seats, booked_at}`.
//!
//! Indexes are created idempotently by [`MongoStore::start`], in the background with backoff so that a
//! database that is down at start-up delays readiness instead of crashing the service. A booking takes
//! its seats with one conditional update (`remaining >= n` in the filter, `$inc: -n`), so the remaining
//! seats never drop below zero under any concurrency; see [`MongoBookingRepository`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use backon::{ExponentialBuilder, Retryable};
use mongodb::bson::{Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Database, IndexModel};

use crate::{RepositoryError, StoreHealth};

mod bookings;
mod documents;
mod events;

pub use bookings::MongoBookingRepository;
pub use events::{MongoEventRepository, MongoLocationRepository};

/// Settings of a MongoDB store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoConfig {
    /// Connection string (the reference's `MONGO_URL`), e.g. `mongodb://127.0.0.1:27017`.
    pub url: String,
    /// The database this service owns.
    pub database: String,
    /// Most pooled connections per server (default 20).
    pub max_pool_size: u32,
    /// Time-out of opening one connection (default 5 s).
    pub connect_timeout: Duration,
    /// How long an operation waits for a usable server before it fails with `Unavailable` (default 5 s).
    pub server_selection_timeout: Duration,
    /// Retry a write once after a network error or failover (default true; needs a replica set).
    pub retry_writes: bool,
}

impl MongoConfig {
    /// Defaults for `url` and `database`.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            database: database.into(),
            max_pool_size: 20,
            connect_timeout: Duration::from_secs(5),
            server_selection_timeout: Duration::from_secs(5),
            retry_writes: true,
        }
    }
}

/// Maps a driver error to the port's error: duplicate key is `Conflict`; lost or unreachable servers
/// (and errors the server labels retryable) are `Unavailable`; the rest `Unexpected`.
pub(crate) fn map_error(error: mongodb::error::Error) -> RepositoryError {
    if let ErrorKind::Write(WriteFailure::WriteError(write)) = error.kind.as_ref()
        && write.code == 11000
    {
        return RepositoryError::Conflict(write.message.clone());
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
        RepositoryError::Unavailable(error.to_string())
    } else {
        RepositoryError::Unexpected(error.to_string())
    }
}

/// A connection pool to one database, and whether its start-up work (indexes) is done.
#[derive(Clone, Debug)]
pub struct MongoStore {
    database: Database,
    initialised: Arc<AtomicBool>,
}

/// Which indexes a service needs: (collection, keys, unique).
pub type IndexSpec = (&'static str, Document, bool);

impl MongoStore {
    /// Builds the client (no connection is opened yet) and starts creating `indexes` in the
    /// background, retrying with backoff (up to 30 s between attempts) until the database answers.
    ///
    /// # Errors
    /// [`RepositoryError::Unexpected`] when the connection string is invalid.
    pub async fn start(
        config: &MongoConfig,
        indexes: Vec<IndexSpec>,
    ) -> Result<Self, RepositoryError> {
        let mut options = ClientOptions::parse(&config.url)
            .await
            .map_err(|e| RepositoryError::Unexpected(format!("MONGO_URL: {e}")))?;
        options.max_pool_size = Some(config.max_pool_size);
        options.connect_timeout = Some(config.connect_timeout);
        options.server_selection_timeout = Some(config.server_selection_timeout);
        options.retry_writes = Some(config.retry_writes);
        options
            .app_name
            .get_or_insert_with(|| "myevents".to_owned());
        let client = Client::with_options(options).map_err(map_error)?;
        let store = Self {
            database: client.database(&config.database),
            initialised: Arc::new(AtomicBool::new(false)),
        };
        let background = store.clone();
        tokio::spawn(async move { background.create_indexes(indexes).await });
        Ok(store)
    }

    async fn create_indexes(&self, indexes: Vec<IndexSpec>) {
        let attempt = || async {
            for (collection, keys, unique) in &indexes {
                let model = IndexModel::builder()
                    .keys(keys.clone())
                    .options(IndexOptions::builder().unique(*unique).build())
                    .build();
                self.database
                    .collection::<Document>(collection)
                    .create_index(model)
                    .await
                    .map_err(map_error)?;
            }
            Ok::<(), RepositoryError>(())
        };
        let result = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(200))
                    .with_max_delay(Duration::from_secs(30))
                    .without_max_times(),
            )
            .when(|e| matches!(e, RepositoryError::Unavailable(_)))
            .notify(|error, delay| {
                tracing::warn!(%error, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "MongoDB not reachable for start-up work, retrying");
            })
            .await;
        match result {
            Ok(()) => {
                self.initialised.store(true, Ordering::Relaxed);
                tracing::info!(database = %self.database.name(), "MongoDB indexes ready");
            }
            Err(error) => tracing::error!(%error, "creating MongoDB indexes failed"),
        }
    }

    /// The database.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Whether the start-up work (indexes) is done.
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
        self.database
            .run_command(doc! {"ping": 1})
            .await
            .map_err(map_error)?;
        if self.is_initialised() {
            Ok(())
        } else {
            Err(RepositoryError::Unavailable(
                "indexes are still being created".to_owned(),
            ))
        }
    }
}

/// The indexes of the event service: events by name (oldest first).
pub fn event_service_indexes() -> Vec<IndexSpec> {
    vec![(events::EVENTS, doc! {"name": 1, "_id": 1}, false)]
}

/// The indexes of the booking service: bookings by event and by user, in id order.
pub fn booking_service_indexes() -> Vec<IndexSpec> {
    vec![
        (bookings::BOOKINGS, doc! {"event_id": 1, "_id": 1}, false),
        (bookings::BOOKINGS, doc! {"user_id": 1, "_id": 1}, false),
    ]
}
