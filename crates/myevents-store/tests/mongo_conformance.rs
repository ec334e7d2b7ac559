//! The repository conformance suite against a real MongoDB-wire server at `MYEVENTS_TEST_MONGO_URL`
//! (default `mongodb://127.0.0.1:27017`); each test in its own database.
#![cfg(feature = "mongodb")]

use std::sync::Arc;

use myevents_store::conformance::StoreUnderTest;
use myevents_store::mongo::{
    MongoBookingRepository, MongoConfig, MongoEventRepository, MongoLocationRepository,
    MongoOutbox, MongoStore, booking_service_indexes, event_service_indexes,
};
use myevents_store::{BookingRepository, EventRepository, LocationRepository};

async fn store(indexes: Vec<myevents_store::mongo::IndexSpec>) -> MongoStore {
    let url = std::env::var("MYEVENTS_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017".to_owned());
    let database = format!("myevents_test_{}", uuid::Uuid::now_v7().simple());
    MongoStore::start(&MongoConfig::new(url, database), indexes)
        .await
        .expect("client")
}

mod locations {
    use super::*;
    myevents_store::location_repository_conformance!(async {
        let store = store(event_service_indexes()).await;
        StoreUnderTest {
            repo: Arc::new(MongoLocationRepository::new(&store)) as Arc<dyn LocationRepository>,
            outbox: Arc::new(MongoOutbox::for_event_service(&store)),
        }
    });
}

mod events {
    use super::*;
    myevents_store::event_repository_conformance!(async {
        let store = store(event_service_indexes()).await;
        StoreUnderTest {
            repo: Arc::new(MongoEventRepository::new(&store)) as Arc<dyn EventRepository>,
            outbox: Arc::new(MongoOutbox::for_event_service(&store)),
        }
    });
}

mod bookings {
    use super::*;
    myevents_store::booking_repository_conformance!(async {
        let store = store(booking_service_indexes()).await;
        StoreUnderTest {
            repo: Arc::new(MongoBookingRepository::new(&store)) as Arc<dyn BookingRepository>,
            outbox: Arc::new(MongoOutbox::for_booking_service(&store)),
        }
    });
}

mod idempotency {
    use super::*;
    myevents_store::idempotency_repository_conformance!(async {
        let store = store(booking_service_indexes()).await;
        Arc::new(myevents_store::mongo::MongoIdempotencyRepository::new(
            &store,
        )) as Arc<dyn myevents_store::IdempotencyRepository>
    });
}

#[tokio::test]
async fn the_store_reports_ready_once_its_indexes_exist() {
    use myevents_store::StoreHealth;
    let store = store(booking_service_indexes()).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.check().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    store.drop_database().await.expect("drop");
}

#[tokio::test]
async fn an_unreachable_server_is_unavailable_not_a_crash() {
    use myevents_store::{RepositoryError, StoreHealth};
    let mut config = MongoConfig::new("mongodb://127.0.0.1:1", "myevents_unreachable");
    config.server_selection_timeout = std::time::Duration::from_millis(300);
    let store = MongoStore::start(&config, event_service_indexes())
        .await
        .expect("client");
    assert!(matches!(
        store.check().await,
        Err(RepositoryError::Unavailable(_))
    ));
    let events = MongoEventRepository::new(&store);
    assert!(matches!(
        events.get(myevents_domain::id::EventId::generate()).await,
        Err(RepositoryError::Unavailable(_))
    ));
}
