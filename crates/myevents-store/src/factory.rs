//! A service's whole store — its repositories, its outbox, its idempotency records and its health —
//! built from a [`StoreConfig`]: the one place where a store kind becomes adapters.
//!
//! ```no_run
//! use myevents_store::config::StoreConfig;
//! use myevents_store::factory::{BookingStore, open};
//!
//! # async fn demo() -> Result<(), myevents_store::factory::OpenError> {
//! let store: BookingStore = open(&StoreConfig::Memory).await?;
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;

use crate::config::StoreConfig;
use crate::memory::{
    InMemoryBookingRepository, InMemoryEventRepository, InMemoryIdempotencyRepository,
    InMemoryOutbox,
};
use crate::{
    AlwaysReady, BookingRepository, EventRepository, IdempotencyRepository, LocationRepository,
    Outbox, RepositoryError, StoreHealth,
};

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The configuration names a kind this binary was built without (cargo feature `mongodb` or
    /// `dynamodb`).
    #[error("STORE_KIND={0}, but this binary was built without the `{0}` feature")]
    NotCompiled(&'static str),
    /// The adapter refused its settings (e.g. a malformed `MONGO_URL`).
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

/// What every service's store holds besides its repositories.
#[derive(Clone)]
pub struct Shared {
    /// Messages stored with the state changes, waiting to be published.
    pub outbox: Arc<dyn Outbox>,
    /// What each `Idempotency-Key` did.
    pub idempotency: Arc<dyn IdempotencyRepository>,
    /// Whether the store can serve (readiness).
    pub health: Arc<dyn StoreHealth>,
}

impl Shared {
    /// In memory, around the outbox the repositories write to.
    fn in_memory(outbox: InMemoryOutbox) -> Self {
        Self {
            outbox: Arc::new(outbox),
            idempotency: Arc::new(InMemoryIdempotencyRepository::default()),
            health: Arc::new(AlwaysReady),
        }
    }

    /// On DynamoDB, in the service's table.
    #[cfg(feature = "dynamodb")]
    fn on_dynamo(store: &crate::dynamo::DynamoStore) -> Self {
        Self {
            outbox: Arc::new(crate::dynamo::DynamoOutbox::new(store)),
            idempotency: Arc::new(crate::dynamo::DynamoIdempotencyRepository::new(store)),
            health: Arc::new(store.clone()),
        }
    }

    /// On MongoDB, with the service's outbox collections.
    #[cfg(feature = "mongodb")]
    fn on_mongo(mongo: crate::mongo::MongoStore, outbox: crate::mongo::MongoOutbox) -> Self {
        Self {
            outbox: Arc::new(outbox),
            idempotency: Arc::new(crate::mongo::MongoIdempotencyRepository::new(&mongo)),
            health: Arc::new(mongo),
        }
    }
}

/// How a service's store is built on each backend. Implemented by [`BookingStore`] and
/// [`EventStore`]; [`open`] picks the backend.
pub trait ServiceStore: Clone + Send + Sync + Sized + 'static {
    /// Fresh in-memory adapters (nothing survives the process).
    fn in_memory() -> Self;

    /// What this service needs of MongoDB: its collections' indexes, and whether transactions.
    #[cfg(feature = "mongodb")]
    fn mongo_schema() -> crate::mongo::Schema;

    /// The adapters over one started MongoDB store.
    #[cfg(feature = "mongodb")]
    fn on_mongo(mongo: crate::mongo::MongoStore) -> Self;

    /// The adapters over one started DynamoDB store (the service's table).
    #[cfg(feature = "dynamodb")]
    fn on_dynamo(store: &crate::dynamo::DynamoStore) -> Self;

    /// The outbox, idempotency records and health.
    fn shared(&self) -> &Shared;
}

/// Opens the store `config` names. A MongoDB that is down does not fail this: the store creates its
/// indexes once the database answers, and its [`Shared::health`] says so meanwhile.
///
/// # Errors
/// [`OpenError::Store`] for a malformed `MONGO_URL`, [`OpenError::NotCompiled`] for a kind this
/// binary was built without.
pub async fn open<S: ServiceStore>(config: &StoreConfig) -> Result<S, OpenError> {
    match config {
        StoreConfig::Memory => Ok(S::in_memory()),
        #[cfg(feature = "mongodb")]
        StoreConfig::MongoDb(settings) => {
            let mongo = crate::mongo::MongoStore::start(settings, S::mongo_schema()).await?;
            Ok(S::on_mongo(mongo))
        }
        #[cfg(not(feature = "mongodb"))]
        StoreConfig::MongoDb(_) => Err(OpenError::NotCompiled("mongodb")),
        #[cfg(feature = "dynamodb")]
        StoreConfig::DynamoDb(settings) => {
            let store = crate::dynamo::DynamoStore::start(settings).await?;
            Ok(S::on_dynamo(&store))
        }
        #[cfg(not(feature = "dynamodb"))]
        StoreConfig::DynamoDb(_) => Err(OpenError::NotCompiled("dynamodb")),
    }
}

/// The booking service's store: seat inventory and bookings, and what every store holds.
#[derive(Clone)]
pub struct BookingStore {
    /// Seat inventory and bookings.
    pub bookings: Arc<dyn BookingRepository>,
    /// Outbox, idempotency records, health.
    pub shared: Shared,
}

impl ServiceStore for BookingStore {
    fn in_memory() -> Self {
        let outbox = InMemoryOutbox::default();
        let bookings = Arc::new(InMemoryBookingRepository::new(outbox.clone()));
        let shared = Shared::in_memory(outbox);
        Self { bookings, shared }
    }

    #[cfg(feature = "mongodb")]
    fn mongo_schema() -> crate::mongo::Schema {
        crate::mongo::booking_service_indexes().into()
    }

    #[cfg(feature = "mongodb")]
    fn on_mongo(mongo: crate::mongo::MongoStore) -> Self {
        use crate::mongo::{MongoBookingRepository, MongoOutbox};
        let bookings = Arc::new(MongoBookingRepository::new(&mongo));
        let outbox = MongoOutbox::for_booking_service(&mongo);
        let shared = Shared::on_mongo(mongo, outbox);
        Self { bookings, shared }
    }

    #[cfg(feature = "dynamodb")]
    fn on_dynamo(store: &crate::dynamo::DynamoStore) -> Self {
        Self {
            bookings: Arc::new(crate::dynamo::DynamoBookingRepository::new(store)),
            shared: Shared::on_dynamo(store),
        }
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }
}

/// The event service's store: events and locations, and what every store holds.
#[derive(Clone)]
pub struct EventStore {
    /// Events (with their booked seats and inbox).
    pub events: Arc<dyn EventRepository>,
    /// Locations.
    pub locations: Arc<dyn LocationRepository>,
    /// Outbox, idempotency records, health.
    pub shared: Shared,
}

impl ServiceStore for EventStore {
    fn in_memory() -> Self {
        let outbox = InMemoryOutbox::default();
        let events = InMemoryEventRepository::new(outbox.clone());
        let locations = Arc::new(events.locations());
        let events = Arc::new(events);
        let shared = Shared::in_memory(outbox);
        Self {
            events,
            locations,
            shared,
        }
    }

    #[cfg(feature = "mongodb")]
    fn mongo_schema() -> crate::mongo::Schema {
        crate::mongo::event_service_schema()
    }

    #[cfg(feature = "mongodb")]
    fn on_mongo(mongo: crate::mongo::MongoStore) -> Self {
        use crate::mongo::{MongoEventRepository, MongoLocationRepository, MongoOutbox};
        let events = Arc::new(MongoEventRepository::new(&mongo));
        let locations = Arc::new(MongoLocationRepository::new(&mongo));
        let outbox = MongoOutbox::for_event_service(&mongo);
        let shared = Shared::on_mongo(mongo, outbox);
        Self {
            events,
            locations,
            shared,
        }
    }

    #[cfg(feature = "dynamodb")]
    fn on_dynamo(store: &crate::dynamo::DynamoStore) -> Self {
        Self {
            events: Arc::new(crate::dynamo::DynamoEventRepository::new(store)),
            locations: Arc::new(crate::dynamo::DynamoLocationRepository::new(store)),
            shared: Shared::on_dynamo(store),
        }
    }

    fn shared(&self) -> &Shared {
        &self.shared
    }
}
