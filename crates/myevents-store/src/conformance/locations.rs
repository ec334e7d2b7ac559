//! Checks on [`LocationRepository`].

use std::sync::Arc;

use myevents_domain::id::LocationId;

use super::{StoreUnderTest, pending_ids, sample_location, sample_message};
use crate::{LocationRepository, PageRequest, RepositoryError};

/// A stored location reads back equal; an unknown id reads as `None`.
pub async fn stores_and_reads_back(repo: Arc<dyn LocationRepository>) {
    let location = sample_location("West Hall");
    repo.insert(&location, &sample_message())
        .await
        .expect("insert");
    assert_eq!(repo.get(location.id).await.expect("get"), Some(location));
    assert_eq!(repo.get(LocationId::generate()).await.expect("get"), None);
}

/// A second insert with the same id is a conflict and keeps the first.
pub async fn rejects_a_duplicate_id(repo: Arc<dyn LocationRepository>) {
    let location = sample_location("West Hall");
    repo.insert(&location, &sample_message())
        .await
        .expect("insert");
    let mut other = sample_location("East Hall");
    other.id = location.id;
    assert!(matches!(
        repo.insert(&other, &sample_message()).await,
        Err(RepositoryError::Conflict(_))
    ));
    assert_eq!(repo.get(location.id).await.expect("get"), Some(location));
}

/// A stored location's message waits in the outbox until marked published; a refused duplicate
/// adds none.
pub async fn announces_through_the_outbox(store: StoreUnderTest<dyn LocationRepository>) {
    let location = sample_location("West Hall");
    let message = sample_message();
    store
        .repo
        .insert(&location, &message)
        .await
        .expect("insert");
    assert_eq!(
        pending_ids(store.outbox.as_ref()).await,
        std::slice::from_ref(&message.id)
    );
    let pending = store.outbox.pending(10).await.expect("pending");
    assert_eq!(pending, std::slice::from_ref(&message));
    assert!(
        store
            .repo
            .insert(&location, &sample_message())
            .await
            .is_err()
    );
    assert_eq!(
        pending_ids(store.outbox.as_ref()).await,
        std::slice::from_ref(&message.id)
    );
    store
        .outbox
        .mark_published(std::slice::from_ref(&message.id))
        .await
        .expect("mark");
    store
        .outbox
        .mark_published(std::slice::from_ref(&message.id))
        .await
        .expect("mark twice");
    assert!(pending_ids(store.outbox.as_ref()).await.is_empty());
}

/// Listing pages through every location in id order.
pub async fn lists_in_pages(repo: Arc<dyn LocationRepository>) {
    let mut all = Vec::new();
    for i in 0..5 {
        let location = sample_location(&format!("hall {i}"));
        repo.insert(&location, &sample_message())
            .await
            .expect("insert");
        all.push(location);
    }
    all.sort_by_key(|l| l.id);
    let first = repo.list(PageRequest::first(2)).await.expect("list");
    assert_eq!(first, all[..2]);
    let second = repo
        .list(PageRequest::new(Some(first[1].id.object_id()), 2))
        .await
        .expect("list");
    assert_eq!(second, all[2..4]);
    let rest = repo
        .list(PageRequest::new(Some(second[1].id.object_id()), 100))
        .await
        .expect("list");
    assert_eq!(rest, all[4..]);
}

/// Expands to one test per [`locations`](crate::conformance::locations) check. The argument is an
/// async expression evaluating to a [`StoreUnderTest`](crate::conformance::StoreUnderTest) of
/// `dyn LocationRepository` that is fresh and empty each time.
#[macro_export]
macro_rules! location_repository_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!(locations, $make;
            stores_and_reads_back, rejects_a_duplicate_id, lists_in_pages;
            announces_through_the_outbox);
    };
}
