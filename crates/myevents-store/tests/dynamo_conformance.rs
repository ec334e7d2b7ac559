//! The repository conformance suite against a real AWS-API server: `MYEVENTS_TEST_AWS_ENDPOINT`
//! (default `http://127.0.0.1:5005`; the test command starts moto in server mode there), with the
//! credentials of the SDK's chain (the test command sets test ones for moto). Each check uses its
//! own table, created by the store as at a service's start.
//!
//! Where moto differs from DynamoDB: its global secondary indexes are updated with each write
//! (DynamoDB's follow within about a second, so a listing right after a write may miss it there),
//! its transactions never conflict with each other (DynamoDB's cancel with `TransactionConflict`
//! under concurrency, which the store retries), and it enforces no capacity or throttling. It is also
//! slow: about 10 ms a request, served one at a time (scripts/aws_test_server.py says why), so a
//! burst of 200 concurrent bookings waits its turn for seconds; the checks allow a call 60 s
//! (`DYNAMODB_OPERATION_TIMEOUT`, 10 s by default, is for DynamoDB's latency).
#![cfg(feature = "dynamodb")]

use std::sync::Arc;

use myevents_store::conformance::StoreUnderTest;
use myevents_store::dynamo::{
    DynamoBookingRepository, DynamoConfig, DynamoEventRepository, DynamoIdempotencyRepository,
    DynamoLocationRepository, DynamoOutbox, DynamoStore, TableSetup,
};
use myevents_store::{
    BookingRepository, EventRepository, IdempotencyRepository, LocationRepository, RepositoryError,
    StoreHealth,
};

fn endpoint() -> String {
    std::env::var("MYEVENTS_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5005".to_owned())
}

fn config(table: &str) -> DynamoConfig {
    let mut config = DynamoConfig::new(table);
    config.endpoint = Some(endpoint());
    config.region = Some("eu-west-1".to_owned());
    config.operation_timeout = std::time::Duration::from_secs(60);
    config
}

/// A store on a table of its own, ready.
async fn store() -> DynamoStore {
    let table = format!("myevents-test-{}", uuid::Uuid::now_v7().simple());
    let store = DynamoStore::start(&config(&table)).await.expect("client");
    store.check().await.expect("the table is ready");
    store
}

mod locations {
    use super::*;
    myevents_store::location_repository_conformance!(async {
        let store = store().await;
        StoreUnderTest {
            repo: Arc::new(DynamoLocationRepository::new(&store)) as Arc<dyn LocationRepository>,
            outbox: Arc::new(DynamoOutbox::new(&store)),
        }
    });
}

mod location_deletion {
    use super::*;
    myevents_store::location_deletion_conformance!(async {
        let store = store().await;
        (
            Arc::new(DynamoLocationRepository::new(&store)) as Arc<dyn LocationRepository>,
            Arc::new(DynamoEventRepository::new(&store)) as Arc<dyn EventRepository>,
        )
    });
}

mod events {
    use super::*;
    myevents_store::event_repository_conformance!(async {
        let store = store().await;
        StoreUnderTest {
            repo: Arc::new(DynamoEventRepository::new(&store)) as Arc<dyn EventRepository>,
            outbox: Arc::new(DynamoOutbox::new(&store)),
        }
    });
}

mod bookings {
    use super::*;
    myevents_store::booking_repository_conformance!(async {
        let store = store().await;
        StoreUnderTest {
            repo: Arc::new(DynamoBookingRepository::new(&store)) as Arc<dyn BookingRepository>,
            outbox: Arc::new(DynamoOutbox::new(&store)),
        }
    });
}

mod idempotency {
    use super::*;
    myevents_store::idempotency_repository_conformance!(async {
        let store = store().await;
        Arc::new(DynamoIdempotencyRepository::new(&store)) as Arc<dyn IdempotencyRepository>
    });
}

/// With `DYNAMODB_TABLE_SETUP=check` a missing table is not created: the store stays unready and
/// says what to create; once the table exists (created here by a store allowed to), it is ready.
#[tokio::test]
async fn check_mode_names_the_missing_table_and_creates_nothing() {
    let table = format!("myevents-test-{}", uuid::Uuid::now_v7().simple());
    let mut checking = config(&table);
    checking.setup = TableSetup::Check;
    let store = DynamoStore::start(&checking).await.expect("client");
    let Err(RepositoryError::Unavailable(cause)) = store.check().await else {
        panic!("ready without a table");
    };
    let text = cause.to_string();
    assert!(
        text.contains(&table) && text.contains("DYNAMODB_TABLE_SETUP"),
        "{text}"
    );
    let events = DynamoEventRepository::new(&store);
    assert!(matches!(
        events.get(myevents_domain::id::EventId::generate()).await,
        Err(RepositoryError::Unavailable(_))
    ));
    DynamoStore::start(&config(&table))
        .await
        .expect("creating store");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.check().await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never ready after the table was created"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A server that does not answer makes the store unavailable (and its calls), not a crash.
#[tokio::test]
async fn an_unreachable_server_is_unavailable_not_a_crash() {
    let mut config = config("myevents-unreachable");
    config.endpoint = Some("http://127.0.0.1:1".to_owned());
    config.operation_timeout = std::time::Duration::from_secs(2);
    let store = DynamoStore::start(&config).await.expect("client");
    assert!(matches!(
        store.check().await,
        Err(RepositoryError::Unavailable(_))
    ));
    let bookings = DynamoBookingRepository::new(&store);
    assert!(matches!(
        bookings
            .booking(myevents_domain::id::BookingId::generate())
            .await,
        Err(RepositoryError::Unavailable(_))
    ));
}
