//! Checks on [`EventRepository`].

use std::sync::Arc;

use futures_util::StreamExt;
use myevents_domain::id::EventId;
use myevents_domain::seats::SeatCount;

use super::{StoreUnderTest, pending_ids, sample_event, sample_message, time};
use crate::{EventRepository, InboxKey, PageRequest, RepositoryError, SeatChange};

/// A stored event (with its embedded location) reads back equal; an unknown id reads as `None`.
pub async fn stores_and_reads_back(repo: Arc<dyn EventRepository>) {
    let event = sample_event("opera aida");
    repo.insert(&event, &sample_message())
        .await
        .expect("insert");
    assert_eq!(repo.get(event.id).await.expect("get"), Some(event));
    assert_eq!(repo.get(EventId::generate()).await.expect("get"), None);
}

/// A second insert with the same id is a conflict.
pub async fn rejects_a_duplicate_id(repo: Arc<dyn EventRepository>) {
    let event = sample_event("opera aida");
    repo.insert(&event, &sample_message())
        .await
        .expect("insert");
    let mut other = sample_event("tosca");
    other.id = event.id;
    assert!(matches!(
        repo.insert(&other, &sample_message()).await,
        Err(RepositoryError::Conflict(_))
    ));
}

/// Finding by name gives the oldest event with exactly that name.
pub async fn finds_the_oldest_by_exact_name(repo: Arc<dyn EventRepository>) {
    let first = sample_event("opera aida");
    let second = sample_event("opera aida");
    repo.insert(&second, &sample_message())
        .await
        .expect("insert");
    repo.insert(&first, &sample_message())
        .await
        .expect("insert");
    repo.insert(&sample_event("tosca"), &sample_message())
        .await
        .expect("insert");
    assert_eq!(
        repo.find_by_name("opera aida").await.expect("find"),
        Some(first)
    );
    assert_eq!(repo.find_by_name("Opera Aida").await.expect("find"), None);
}

/// The inbox key of message `id` as consumer `events-service` applies it.
fn key(id: &str) -> InboxKey<'_> {
    InboxKey {
        consumer: "events-service",
        message_id: id,
    }
}

/// Booked seats are recorded once per inbox key; unknown events are said so.
pub async fn records_booked_seats_once_per_message(repo: Arc<dyn EventRepository>) {
    let event = sample_event("opera aida");
    repo.insert(&event, &sample_message())
        .await
        .expect("insert");
    let record = |key: InboxKey<'static>, seats| {
        let repo = Arc::clone(&repo);
        async move {
            repo.record_booked_seats(event.id, key, seats)
                .await
                .expect("record")
        }
    };
    assert_eq!(record(key("m1"), 3).await, SeatChange::Applied);
    assert_eq!(record(key("m1"), 3).await, SeatChange::Duplicate);
    assert_eq!(record(key("m2"), 2).await, SeatChange::Applied);
    assert_eq!(record(key("m3"), -1).await, SeatChange::Applied);
    // Another consumer of the same message keeps its own record.
    let other = InboxKey {
        consumer: "audit",
        message_id: "m1",
    };
    assert_eq!(record(other, 1).await, SeatChange::Applied);
    let stored = repo.get(event.id).await.expect("get").expect("stored");
    assert_eq!(stored.seats_booked, SeatCount::new(5));
    assert_eq!(stored.seats_available(), SeatCount::new(95));
    assert_eq!(
        repo.record_booked_seats(EventId::generate(), key("m4"), 1)
            .await
            .expect("record"),
        SeatChange::UnknownEvent
    );
    // The unknown event left no record: once the event exists, the message applies.
    assert_eq!(record(key("m4"), 1).await, SeatChange::Applied);
}

/// A message redelivered (or replayed from its dead-letter queue) after 5,000 newer ones is
/// recognised: the inbox has no window.
pub async fn an_old_message_after_five_thousand_newer_counts_once(repo: Arc<dyn EventRepository>) {
    let event = sample_event("opera aida");
    repo.insert(&event, &sample_message())
        .await
        .expect("insert");
    let ids: Vec<String> = (0..=5000).map(|i| format!("message-{i}")).collect();
    // Four at a time, as a consumer with a prefetch would.
    futures_util::stream::iter(&ids)
        .for_each_concurrent(4, |id| {
            let repo = Arc::clone(&repo);
            async move {
                let change = repo.record_booked_seats(event.id, key(id), 1).await;
                assert_eq!(change.expect("record"), SeatChange::Applied);
            }
        })
        .await;
    for again in [&ids[0], &ids[1]] {
        assert_eq!(
            repo.record_booked_seats(event.id, key(again), 1)
                .await
                .expect("redelivery"),
            SeatChange::Duplicate
        );
    }
    let stored = repo.get(event.id).await.expect("get").expect("stored");
    assert_eq!(stored.seats_booked, SeatCount::new(5001));
}

/// Concurrent deliveries of the same messages count each message once.
pub async fn concurrent_duplicates_count_once(repo: Arc<dyn EventRepository>) {
    let event = sample_event("opera aida");
    repo.insert(&event, &sample_message())
        .await
        .expect("insert");
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let repo = Arc::clone(&repo);
            // 10 distinct messages, each delivered 4 times.
            tokio::spawn(async move {
                let id = format!("m{}", i % 10);
                repo.record_booked_seats(event.id, key(&id), 1).await
            })
        })
        .collect();
    for task in futures_util::future::join_all(tasks).await {
        task.expect("task").expect("record");
    }
    let stored = repo.get(event.id).await.expect("get").expect("stored");
    assert_eq!(stored.seats_booked, SeatCount::new(10));
}

/// Stored events' messages wait in the outbox, oldest first, until marked published.
pub async fn announces_through_the_outbox(store: StoreUnderTest<dyn EventRepository>) {
    let (first, second) = (sample_message(), sample_message());
    store
        .repo
        .insert(&sample_event("a"), &first)
        .await
        .expect("insert");
    store
        .repo
        .insert(&sample_event("b"), &second)
        .await
        .expect("insert");
    assert_eq!(
        pending_ids(store.outbox.as_ref()).await,
        [first.id.clone(), second.id.clone()]
    );
    assert_eq!(
        store.outbox.pending(1).await.expect("pending"),
        std::slice::from_ref(&first)
    );
    store
        .outbox
        .mark_published(std::slice::from_ref(&first.id))
        .await
        .expect("mark");
    assert_eq!(
        pending_ids(store.outbox.as_ref()).await,
        std::slice::from_ref(&second.id)
    );
}

/// Listing pages through every event in id order.
pub async fn lists_in_pages(repo: Arc<dyn EventRepository>) {
    let mut all = Vec::new();
    for i in 0..5 {
        let event = sample_event(&format!("show {i}"));
        repo.insert(&event, &sample_message())
            .await
            .expect("insert");
        all.push(event);
    }
    let first = repo.list(PageRequest::first(3)).await.expect("list");
    assert_eq!(first, all[..3]);
    let rest = repo
        .list(PageRequest::new(Some(first[2].id.object_id()), 3))
        .await
        .expect("list");
    assert_eq!(rest, all[3..]);
}

/// A change is stored only over the revision it was made to, with its message in the same write;
/// the seats booked meanwhile stay; a cancellation is kept.
pub async fn a_change_is_stored_over_its_revision_only(store: StoreUnderTest<dyn EventRepository>) {
    let repo = store.repo;
    let event = sample_event("opera aida");
    repo.insert(&event, &sample_message())
        .await
        .expect("insert");
    let key = InboxKey {
        consumer: "events-service",
        message_id: "m1",
    };
    repo.record_booked_seats(event.id, key, 7)
        .await
        .expect("seats");
    let mut renamed = event.clone();
    renamed.name = "opera tosca".to_owned();
    renamed.capacity = SeatCount::new(120);
    renamed.revision = 1;
    let announce = sample_message();
    assert_eq!(repo.update(&renamed, &announce).await, Ok(true));
    let stored = repo.get(event.id).await.expect("get").expect("stored");
    assert_eq!(
        (stored.name.as_str(), stored.capacity, stored.revision),
        ("opera tosca", SeatCount::new(120), 1)
    );
    assert_eq!(stored.seats_booked, SeatCount::new(7), "seats booked stay");
    assert!(
        pending_ids(store.outbox.as_ref())
            .await
            .contains(&announce.id)
    );
    // Another change made to revision 0 comes second: refused, nothing stored or announced.
    let mut stale = event.clone();
    stale.name = "lost".to_owned();
    stale.revision = 1;
    let lost = sample_message();
    assert_eq!(repo.update(&stale, &lost).await, Ok(false));
    assert!(!pending_ids(store.outbox.as_ref()).await.contains(&lost.id));
    let mut skipping = renamed.clone();
    skipping.revision = 3;
    assert_eq!(repo.update(&skipping, &sample_message()).await, Ok(false));
    let cancelled = stored
        .cancelled(time(1_768_000_500), "storm".to_owned())
        .expect("cancel");
    assert_eq!(repo.update(&cancelled, &sample_message()).await, Ok(true));
    let stored = repo.get(event.id).await.expect("get").expect("stored");
    assert_eq!(stored, cancelled);
    let mut unknown = sample_event("nowhere");
    unknown.revision = 1;
    assert_eq!(repo.update(&unknown, &sample_message()).await, Ok(false));
}

/// Expands to one test per [`events`](crate::conformance::events) check (see
/// [`location_repository_conformance!`](crate::location_repository_conformance!)).
#[macro_export]
macro_rules! event_repository_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!(events, $make;
            stores_and_reads_back, rejects_a_duplicate_id, finds_the_oldest_by_exact_name,
            lists_in_pages, records_booked_seats_once_per_message, concurrent_duplicates_count_once,
            an_old_message_after_five_thousand_newer_counts_once;
            announces_through_the_outbox, a_change_is_stored_over_its_revision_only);
    };
}
