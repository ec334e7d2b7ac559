//! Checks on [`LocationRepository`].

use std::sync::Arc;

use myevents_domain::id::LocationId;
use myevents_domain::location::{Hall, Location};
use myevents_domain::seats::SeatCount;

use super::{StoreUnderTest, pending_ids, sample_event, sample_location, sample_message, time};
use crate::{EventRepository, LocationDeletion, LocationRepository, PageRequest, RepositoryError};

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

/// `location` renamed and given a third hall, one revision later.
fn extended(location: &Location) -> Location {
    let mut changed = location.clone();
    changed.name = format!("{} (new wing)", location.name);
    changed.halls.push(Hall {
        name: "C".to_owned(),
        location: "annex".to_owned(),
        capacity: SeatCount::new(25),
    });
    changed.revision += 1;
    changed
}

/// A change is stored only over the revision it was made to, with its message in the same write;
/// a change made to an older revision, or to no stored location, stores nothing.
pub async fn updates_only_over_the_revision_read(store: StoreUnderTest<dyn LocationRepository>) {
    let location = sample_location("West Hall");
    let repo = &store.repo;
    repo.insert(&location, &sample_message())
        .await
        .expect("insert");
    let first = extended(&location);
    let message = sample_message();
    assert!(repo.update(&first, &message).await.expect("update"));
    assert_eq!(
        repo.get(location.id).await.expect("get"),
        Some(first.clone())
    );
    let mut lost = extended(&location);
    lost.name = "Lost Hall".to_owned();
    assert!(
        !repo.update(&lost, &sample_message()).await.expect("update"),
        "a change to revision 0 after revision 1 was stored"
    );
    let mut unknown = extended(&location);
    unknown.id = LocationId::generate();
    assert!(
        !repo
            .update(&unknown, &sample_message())
            .await
            .expect("update")
    );
    assert_eq!(repo.get(location.id).await.expect("get"), Some(first));
    assert!(
        pending_ids(store.outbox.as_ref())
            .await
            .contains(&message.id)
    );
    assert_eq!(pending_ids(store.outbox.as_ref()).await.len(), 2);
}

/// A location with an event to come is not deleted; one whose events all ended or were cancelled
/// is, at the revision read only, with its message; it is then neither read nor listed, its id is
/// not taken again, and an event at it is refused.
pub async fn deletes_only_a_location_without_events_to_come(
    locations: Arc<dyn LocationRepository>,
    events: Arc<dyn EventRepository>,
) {
    let location = sample_location("West Hall");
    locations
        .insert(&location, &sample_message())
        .await
        .expect("insert");
    let mut later = sample_event("tosca");
    later.location = location.clone();
    events
        .insert(&later, &sample_message())
        .await
        .expect("insert event");
    let mut cancelled = sample_event("aida");
    cancelled.location = location.clone();
    cancelled.end = time(1_768_900_000);
    cancelled.cancelled = Some(myevents_domain::event::EventCancellation {
        at: time(1_768_000_000),
        reason: String::new(),
    });
    events
        .insert(&cancelled, &sample_message())
        .await
        .expect("insert event");
    let before_the_end = later.end - chrono::Duration::seconds(1);
    let refused = locations
        .delete(location.id, 0, &sample_message(), before_the_end)
        .await
        .expect("delete");
    assert_eq!(refused, LocationDeletion::InUse(later.id));
    assert_eq!(
        locations
            .delete(location.id, 1, &sample_message(), later.end)
            .await
            .expect("delete"),
        LocationDeletion::Stale,
        "deleted at a revision it never had"
    );
    assert_eq!(
        locations.get(location.id).await.expect("get"),
        Some(location.clone())
    );
    let message = sample_message();
    assert_eq!(
        locations
            .delete(location.id, 0, &message, later.end)
            .await
            .expect("delete"),
        LocationDeletion::Deleted,
        "the only event left ended"
    );
    assert_eq!(locations.get(location.id).await.expect("get"), None);
    assert!(
        locations
            .list(PageRequest::first(10))
            .await
            .expect("list")
            .is_empty()
    );
    assert!(matches!(
        locations.insert(&location, &sample_message()).await,
        Err(RepositoryError::Conflict(_))
    ));
    assert!(
        !locations
            .update(&extended(&location), &sample_message())
            .await
            .expect("update")
    );
    let mut too_late = sample_event("nabucco");
    too_late.location = location.clone();
    assert!(matches!(
        events.insert(&too_late, &sample_message()).await,
        Err(RepositoryError::Gone(_))
    ));
    assert_eq!(events.get(too_late.id).await.expect("get"), None);
    assert_eq!(
        locations
            .delete(location.id, 0, &sample_message(), later.end)
            .await
            .expect("delete"),
        LocationDeletion::Stale,
        "deleted twice"
    );
}

/// Expands to one test per [`locations`](crate::conformance::locations) check. The argument is an
/// async expression evaluating to a [`StoreUnderTest`](crate::conformance::StoreUnderTest) of
/// `dyn LocationRepository` that is fresh and empty each time.
#[macro_export]
macro_rules! location_repository_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!(locations, $make;
            stores_and_reads_back, rejects_a_duplicate_id, lists_in_pages;
            announces_through_the_outbox, updates_only_over_the_revision_read);
    };
}

/// Expands to the checks of [`LocationRepository::delete`] with events. The argument is an async
/// expression evaluating to a location and an event repository of one fresh, empty store.
#[macro_export]
macro_rules! location_deletion_conformance {
    ($make:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn deletes_only_a_location_without_events_to_come() {
            let (locations, events) = $make.await;
            $crate::conformance::locations::deletes_only_a_location_without_events_to_come(
                locations, events,
            )
            .await;
        }
    };
}
