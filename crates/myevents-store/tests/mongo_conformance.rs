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

/// Waits (at most 20 s) until `store` has created its indexes and answers.
async fn until_ready(store: &MongoStore) {
    use myevents_store::StoreHealth;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.check().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
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

mod location_deletion {
    use super::*;
    myevents_store::location_deletion_conformance!(async {
        let store = store(event_service_indexes()).await;
        (
            Arc::new(MongoLocationRepository::new(&store)) as Arc<dyn LocationRepository>,
            Arc::new(MongoEventRepository::new(&store)) as Arc<dyn EventRepository>,
        )
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
async fn every_command_the_store_sends_is_counted_by_database_and_name() {
    use myevents_store::BookingRepository;
    let store = store(booking_service_indexes()).await;
    until_ready(&store).await;
    let database = store.database().name().to_owned();
    let commands = myevents_store::mongo::CommandMetrics::registered().commands;
    let count = |command: &str| commands.with_label_values(&[&database, command]).get();
    let (updates, finds) = (count("update"), count("find"));
    let repository = MongoBookingRepository::new(&store);
    let inventory = myevents_domain::booking::SeatInventory::new(
        myevents_domain::id::EventId::generate(),
        "opera aida".to_owned(),
        myevents_domain::seats::SeatCount::new(10),
    );
    assert!(repository.add_inventory(&inventory).await.expect("add"));
    repository
        .inventory(inventory.event_id)
        .await
        .expect("read")
        .expect("stored");
    // The inventory is an upsert (`$setOnInsert`), its read one find.
    assert_eq!(count("update"), updates + 1, "one update");
    assert_eq!(count("find"), finds + 1, "one find");
    store.drop_database().await.expect("drop");
}

#[tokio::test]
async fn idempotency_keys_have_a_ttl_index_on_their_expiry_in_both_services() {
    use futures_util::TryStreamExt;
    for indexes in [event_service_indexes(), booking_service_indexes()] {
        let store = store(indexes).await;
        until_ready(&store).await;
        let listed: Vec<mongodb::IndexModel> = store
            .database()
            .collection::<mongodb::bson::Document>("idempotency_keys")
            .list_indexes()
            .await
            .expect("list indexes")
            .try_collect()
            .await
            .expect("indexes");
        let ttl = listed.iter().find(|index| {
            index.keys == mongodb::bson::doc! {"expires_at": 1}
                && index.options.as_ref().and_then(|o| o.expire_after)
                    == Some(std::time::Duration::ZERO)
        });
        assert!(ttl.is_some(), "no TTL index on expires_at: {listed:?}");
        store.drop_database().await.expect("drop");
    }
}

/// The pending outbox messages are found through a sparse index (only documents with a message
/// waiting are in it, so finding them costs in proportion to them), which replaces the plain index
/// of earlier versions on a database that has it; starting again changes nothing.
#[tokio::test]
async fn the_pending_outbox_index_is_sparse_and_replaces_the_plain_one() {
    use futures_util::TryStreamExt;
    let url = std::env::var("MYEVENTS_TEST_MONGO_URL")
        .unwrap_or_else(|_| "mongodb://127.0.0.1:27017".to_owned());
    let config = MongoConfig::new(
        url,
        format!("myevents_test_{}", uuid::Uuid::now_v7().simple()),
    );
    let bookings = mongodb::Client::with_uri_str(&config.url)
        .await
        .expect("client")
        .database(&config.database)
        .collection::<mongodb::bson::Document>("bookings");
    bookings
        .create_index(
            mongodb::IndexModel::builder()
                .keys(mongodb::bson::doc! {"outbox.id": 1})
                .build(),
        )
        .await
        .expect("the index of an earlier version");
    for _ in 0..2 {
        let store = MongoStore::start(&config, booking_service_indexes())
            .await
            .expect("client");
        until_ready(&store).await;
        let listed: Vec<mongodb::IndexModel> = bookings
            .list_indexes()
            .await
            .expect("list indexes")
            .try_collect()
            .await
            .expect("indexes");
        let on_outbox: Vec<_> = listed
            .iter()
            .filter(|index| index.keys == mongodb::bson::doc! {"outbox.id": 1})
            .collect();
        assert_eq!(on_outbox.len(), 1, "{listed:?}");
        let options = on_outbox[0].options.as_ref().expect("options");
        assert_eq!(options.name.as_deref(), Some("outbox_pending"));
        assert_eq!(options.sparse, Some(true));
    }
    bookings.drop().await.expect("drop");
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

#[tokio::test]
async fn a_seat_return_a_crash_interrupted_is_finished_once_by_the_sweep() {
    use mongodb::bson::{Document, doc, oid::ObjectId};
    use myevents_domain::booking::{Booking, SeatInventory, UserId};
    use myevents_domain::id::{BookingId, EventId};
    use myevents_domain::seats::SeatCount;
    use myevents_store::conformance::sample_message;

    let store = store(booking_service_indexes()).await;
    let repo = MongoBookingRepository::new(&store);
    let bookings = store.database().collection::<Document>("bookings");
    let event_id = EventId::generate();
    let capacity = SeatCount::new(10);
    repo.add_inventory(&SeatInventory {
        event_id,
        event_name: "aida".to_owned(),
        capacity,
        remaining: capacity,
        organiser: None,
        revision: 0,
        cancelled: None,
    })
    .await
    .expect("inventory");
    let booking = |user: &str, seats: u32| Booking {
        id: BookingId::generate(),
        event_id,
        user_id: UserId::parse(user).expect("user"),
        seats: SeatCount::new(seats),
        booked_at: chrono::Utc::now(),
        cancelled_at: None,
        cancel_reason: None,
    };
    let (finished, interrupted) = (booking("alice", 3), booking("bob", 2));
    for booking in [&finished, &interrupted] {
        myevents_store::conformance::place_booking(&repo, booking, &sample_message())
            .await
            .expect("place");
    }
    let remaining = || async {
        repo.inventory(event_id)
            .await
            .expect("read")
            .expect("known")
            .remaining
            .get()
    };
    let flagged = |booking: &Booking| {
        let (bookings, id) = (
            bookings.clone(),
            ObjectId::from_bytes(booking.id.object_id().bytes()),
        );
        async move {
            bookings
                .find_one(doc! {"_id": id})
                .await
                .expect("read")
                .expect("stored")
                .contains_key("returning")
        }
    };
    assert_eq!(remaining().await, 5);

    // A cancellation that ran to its end gives the seats back and leaves its flag to the sweep.
    let cancelled_at = chrono::Utc::now() - chrono::TimeDelta::minutes(5);
    repo.cancel_booking(finished.id, cancelled_at, &sample_message())
        .await
        .expect("cancel");
    assert_eq!(remaining().await, 8);
    assert!(flagged(&finished).await);
    // What a crash right after step 1 of a cancellation leaves: cancelled, seats not yet back.
    bookings
        .update_one(
            doc! {"_id": ObjectId::from_bytes(interrupted.id.object_id().bytes())},
            doc! {"$set": {"cancelled_at": mongodb::bson::DateTime::from_millis(cancelled_at.timestamp_millis()), "returning": true}},
        )
        .await
        .expect("simulate the interrupted cancellation");

    // Too recent for the sweep's cut-off: left to the cancellations still running.
    assert_eq!(repo.finish_seat_returns(cancelled_at).await, Ok(0));
    assert_eq!(remaining().await, 8);
    assert!(flagged(&finished).await && flagged(&interrupted).await);
    // Past it: the interrupted return is finished (and counted), the finished one is not given
    // back twice, and both flags are cleared.
    let now = chrono::Utc::now();
    assert_eq!(repo.finish_seat_returns(now).await, Ok(1));
    assert_eq!(remaining().await, 10);
    assert!(!flagged(&finished).await && !flagged(&interrupted).await);
    assert_eq!(repo.finish_seat_returns(now).await, Ok(0));
    // A repeated cancel afterwards changes nothing either.
    let again = repo
        .cancel_booking(interrupted.id, now, &sample_message())
        .await
        .expect("cancel");
    assert!(matches!(
        again,
        myevents_store::Cancellation::AlreadyCancelled(_)
    ));
    assert_eq!(remaining().await, 10);
    store.drop_database().await.expect("drop");
}
