//! The repository conformance suite: one set of checks every adapter of every port must pass, the
//! in-memory adapters and the real ones against real servers alike.
//!
//! Each check takes a fresh, empty repository. The macros [`location_repository_conformance!`],
//! [`event_repository_conformance!`] and [`booking_repository_conformance!`] expand to one `#[tokio::test]`
//! per check, given an async expression that builds a fresh repository:
//!
//! ```no_run
//! use std::sync::Arc;
//! use myevents_store::memory::InMemoryEventRepository;
//!
//! myevents_store::event_repository_conformance!(async {
//!     let outbox = myevents_store::memory::InMemoryOutbox::default();
//!     myevents_store::conformance::StoreUnderTest {
//!         repo: Arc::new(InMemoryEventRepository::new(outbox.clone()))
//!             as Arc<dyn myevents_store::EventRepository>,
//!         outbox: Arc::new(outbox),
//!     }
//! });
//! ```

use std::sync::Arc;

use chrono::{DateTime, Utc};
use myevents_domain::booking::{Booking, SeatInventory, UserId};
use myevents_domain::event::Event;
use myevents_domain::id::{BookingId, EventId, LocationId};
use myevents_domain::location::{Hall, Location};
use myevents_domain::seats::SeatCount;

use myevents_domain::messages::{DomainEvent, EventBooked, OutboxMessage};

use crate::{
    BookingRepository, Cancellation, EventRepository, InboxKey, LocationRepository, Outbox,
    PageRequest, PlaceBookingError, RepositoryError, SeatChange, Settled,
};

/// Places `booking` as the booking service does: holds its seats, then stores it with `announce`.
/// Returns the seats that remain.
///
/// # Errors
/// What [`BookingRepository::hold_seats`] and [`BookingRepository::store_held_booking`] return.
pub async fn place_booking(
    repo: &dyn BookingRepository,
    booking: &Booking,
    announce: &OutboxMessage,
) -> Result<SeatCount, PlaceBookingError> {
    let hold = repo.hold_seats(booking).await?;
    repo.store_held_booking(&hold, announce).await?;
    Ok(hold.remaining)
}

/// A repository and the outbox of the same store, fresh and empty.
pub struct StoreUnderTest<R: ?Sized> {
    /// The repository.
    pub repo: Arc<R>,
    /// Its store's outbox.
    pub outbox: Arc<dyn Outbox>,
}

/// An outbox message (an `eventBooked` of a fresh event) to pass to writes.
pub fn sample_message() -> OutboxMessage {
    OutboxMessage::new(DomainEvent::EventBooked(EventBooked {
        event_id: EventId::generate(),
        user_id: "alice".to_owned(),
        booking_id: None,
        seats: Some(1),
        booked_at: None,
    }))
}

async fn pending_ids(outbox: &dyn Outbox) -> Vec<String> {
    outbox
        .pending(1000)
        .await
        .expect("pending")
        .into_iter()
        .map(|m| m.id)
        .collect()
}

/// A location with two halls (100 and 50 seats) named `name`.
pub fn sample_location(name: &str) -> Location {
    Location {
        id: LocationId::generate(),
        name: name.to_owned(),
        address: "1 Main St".to_owned(),
        country: "DE".to_owned(),
        open_time: 8,
        close_time: 22,
        halls: vec![
            Hall {
                name: "A".to_owned(),
                location: "1st floor".to_owned(),
                capacity: SeatCount::new(100),
            },
            Hall {
                name: "B".to_owned(),
                location: String::new(),
                capacity: SeatCount::new(50),
            },
        ],
    }
}

fn time(seconds: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(seconds, 0).unwrap_or_default()
}

/// An event named `name` in hall A of a sample location, organised by `organiser-1`.
pub fn sample_event(name: &str) -> Event {
    Event {
        id: EventId::generate(),
        name: name.to_owned(),
        duration_minutes: 120,
        start: time(1_768_000_000),
        end: time(1_768_007_200),
        location: sample_location("West Hall"),
        hall: Some("A".to_owned()),
        capacity: SeatCount::new(100),
        seats_booked: SeatCount::new(0),
        organiser: UserId::parse("organiser-1").ok(),
    }
}

/// A booking of `seats` seats of `event_id` by `user`, at a whole second.
pub fn sample_booking(event_id: EventId, user: &str, seats: u32) -> Booking {
    Booking {
        id: BookingId::generate(),
        event_id,
        user_id: UserId::parse(user).unwrap_or_else(|_| UserId::anonymous()),
        seats: SeatCount::new(seats),
        booked_at: time(1_768_000_100),
        cancelled_at: None,
    }
}

/// Checks on [`LocationRepository`].
pub mod locations {
    use super::*;

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
}

/// Checks on [`EventRepository`].
pub mod events {
    use super::*;
    use futures_util::StreamExt;

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
    pub async fn an_old_message_after_five_thousand_newer_counts_once(
        repo: Arc<dyn EventRepository>,
    ) {
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
}

/// Checks on [`BookingRepository`].
pub mod bookings {
    use super::*;

    fn inventory(seats: u32) -> SeatInventory {
        SeatInventory::new(
            EventId::generate(),
            "opera aida".to_owned(),
            SeatCount::new(seats),
        )
        .organised_by(UserId::parse("organiser-1").ok())
    }

    /// Adding an inventory twice keeps the first and its remaining seats.
    pub async fn adding_an_inventory_is_idempotent(repo: Arc<dyn BookingRepository>) {
        let inv = inventory(10);
        assert!(repo.add_inventory(&inv).await.expect("add"));
        place_booking(
            repo.as_ref(),
            &sample_booking(inv.event_id, "alice", 4),
            &sample_message(),
        )
        .await
        .expect("place");
        assert!(!repo.add_inventory(&inv).await.expect("add again"));
        let stored = repo
            .inventory(inv.event_id)
            .await
            .expect("get")
            .expect("known");
        assert_eq!(stored.remaining, SeatCount::new(6));
        assert_eq!(stored.capacity, SeatCount::new(10));
        assert_eq!(stored.organiser, inv.organiser);
        assert_eq!(
            repo.inventory(EventId::generate()).await.expect("get"),
            None
        );
    }

    /// Placing takes seats and stores the booking; asking for more than remain changes nothing.
    pub async fn placing_takes_seats_until_sold_out(repo: Arc<dyn BookingRepository>) {
        let inv = inventory(5);
        repo.add_inventory(&inv).await.expect("add");
        let booking = sample_booking(inv.event_id, "alice", 3);
        assert_eq!(
            place_booking(repo.as_ref(), &booking, &sample_message()).await,
            Ok(SeatCount::new(2))
        );
        assert_eq!(repo.booking(booking.id).await.expect("get"), Some(booking));
        let too_many = sample_booking(inv.event_id, "bob", 3);
        assert_eq!(
            place_booking(repo.as_ref(), &too_many, &sample_message()).await,
            Err(PlaceBookingError::SoldOut {
                remaining: SeatCount::new(2)
            })
        );
        assert_eq!(repo.booking(too_many.id).await.expect("get"), None);
        assert_eq!(
            place_booking(
                repo.as_ref(),
                &sample_booking(inv.event_id, "bob", 2),
                &sample_message()
            )
            .await,
            Ok(SeatCount::new(0))
        );
        let stored = repo
            .inventory(inv.event_id)
            .await
            .expect("get")
            .expect("known");
        assert_eq!(stored.remaining, SeatCount::new(0));
    }

    /// A placed booking's message waits in the outbox; a refused booking leaves none.
    pub async fn announces_placed_bookings_only(store: StoreUnderTest<dyn BookingRepository>) {
        let inv = inventory(1);
        store.repo.add_inventory(&inv).await.expect("add");
        let placed = sample_message();
        place_booking(
            store.repo.as_ref(),
            &sample_booking(inv.event_id, "alice", 1),
            &placed,
        )
        .await
        .expect("place");
        let refused = place_booking(
            store.repo.as_ref(),
            &sample_booking(inv.event_id, "bob", 1),
            &sample_message(),
        )
        .await;
        assert!(matches!(refused, Err(PlaceBookingError::SoldOut { .. })));
        let unknown = place_booking(
            store.repo.as_ref(),
            &sample_booking(EventId::generate(), "bob", 1),
            &sample_message(),
        )
        .await;
        assert_eq!(unknown, Err(PlaceBookingError::EventNotFound));
        assert_eq!(
            pending_ids(store.outbox.as_ref()).await,
            std::slice::from_ref(&placed.id)
        );
        store
            .outbox
            .mark_published(std::slice::from_ref(&placed.id))
            .await
            .expect("mark");
        assert!(pending_ids(store.outbox.as_ref()).await.is_empty());
    }

    /// A booking for an event the repository does not know is refused.
    pub async fn placing_for_an_unknown_event_is_refused(repo: Arc<dyn BookingRepository>) {
        let booking = sample_booking(EventId::generate(), "alice", 1);
        assert_eq!(
            place_booking(repo.as_ref(), &booking, &sample_message()).await,
            Err(PlaceBookingError::EventNotFound)
        );
        assert_eq!(repo.booking(booking.id).await.expect("get"), None);
    }

    /// 200 concurrent one-seat bookings of a 50-seat event: exactly 50 succeed, 0 seats remain.
    pub async fn concurrent_bookings_never_oversell(repo: Arc<dyn BookingRepository>) {
        let inv = inventory(50);
        repo.add_inventory(&inv).await.expect("add");
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let repo = Arc::clone(&repo);
                let booking = sample_booking(inv.event_id, &format!("user{i}"), 1);
                tokio::spawn(async move {
                    place_booking(repo.as_ref(), &booking, &sample_message()).await
                })
            })
            .collect();
        let mut placed = 0;
        let mut sold_out = 0;
        for result in futures_util::future::join_all(tasks).await {
            match result.expect("task") {
                Ok(_) => placed += 1,
                Err(PlaceBookingError::SoldOut { .. }) => sold_out += 1,
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        assert_eq!((placed, sold_out), (50, 150));
        let stored = repo
            .inventory(inv.event_id)
            .await
            .expect("get")
            .expect("known");
        assert_eq!(stored.remaining, SeatCount::new(0));
        let listed = repo
            .bookings_for_event(inv.event_id, PageRequest::first(1000))
            .await
            .expect("list");
        assert_eq!(listed.len(), 50);
    }

    /// Bookings placed while the event's inventory is being added are placed or find no event, but are
    /// never refused as sold out while seats remain.
    pub async fn an_inventory_appearing_mid_booking_is_never_reported_sold_out(
        repo: Arc<dyn BookingRepository>,
    ) {
        for _ in 0..20 {
            let inv = inventory(10);
            let adding = {
                let repo = Arc::clone(&repo);
                let inv = inv.clone();
                tokio::spawn(async move { repo.add_inventory(&inv).await })
            };
            let placing: Vec<_> = (0..4)
                .map(|_| {
                    let repo = Arc::clone(&repo);
                    let booking = sample_booking(inv.event_id, "alice", 1);
                    tokio::spawn(async move {
                        place_booking(repo.as_ref(), &booking, &sample_message()).await
                    })
                })
                .collect();
            adding.await.expect("task").expect("add");
            for result in futures_util::future::join_all(placing).await {
                match result.expect("task") {
                    Ok(_) | Err(PlaceBookingError::EventNotFound) => {}
                    Err(other) => panic!("refused while seats remained: {other}"),
                }
            }
        }
    }

    async fn remaining(repo: &dyn BookingRepository, event_id: EventId) -> u32 {
        repo.inventory(event_id)
            .await
            .expect("inventory")
            .expect("known")
            .remaining
            .get()
    }

    /// A booking interrupted between holding its seats and being stored is listed as a stale hold; a
    /// retry under the same id finds the hold instead of taking seats again; storing it (by the
    /// retry, then again by the reconciler) settles it once.
    pub async fn an_interrupted_booking_is_finished_from_its_hold_once(
        store: StoreUnderTest<dyn BookingRepository>,
    ) {
        let repo = store.repo.as_ref();
        let inv = inventory(10);
        repo.add_inventory(&inv).await.expect("add");
        let booking = sample_booking(inv.event_id, "alice", 3);
        let hold = repo.hold_seats(&booking).await.expect("hold");
        assert!(hold.fresh);
        assert_eq!(hold.remaining, SeatCount::new(7));
        // The process dies here: the seats are held, no booking is stored.
        assert_eq!(repo.booking(booking.id).await.expect("get"), None);
        let now = Utc::now() + chrono::TimeDelta::seconds(1);
        let stale = repo.stale_holds(now).await.expect("stale");
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].booking, booking);
        assert_eq!(stale[0].attempt, hold.attempt);
        assert!(
            repo.stale_holds(hold.held_at)
                .await
                .expect("stale")
                .is_empty(),
            "a hold is stale only before the cut-off"
        );
        // The retry (same booking id, a later time) finds the hold and takes nothing.
        let retry = Booking {
            booked_at: booking.booked_at + chrono::TimeDelta::seconds(5),
            ..booking.clone()
        };
        let found = repo.hold_seats(&retry).await.expect("hold again");
        assert!(!found.fresh);
        assert_eq!(found.attempt, hold.attempt);
        assert_eq!(found.booking, booking, "the held booking, as first asked");
        assert_eq!(remaining(repo, inv.event_id).await, 7);
        let announce = sample_message();
        assert_eq!(
            repo.store_held_booking(&found, &announce).await,
            Ok(Settled::Stored(booking.clone()))
        );
        // The reconciler, late, settles the same hold: nothing changes.
        assert_eq!(
            repo.store_held_booking(&stale[0], &sample_message()).await,
            Ok(Settled::Stored(booking.clone()))
        );
        assert!(repo.stale_holds(now).await.expect("stale").is_empty());
        assert_eq!(repo.booking(booking.id).await.expect("get"), Some(booking));
        assert_eq!(remaining(repo, inv.event_id).await, 7);
        assert_eq!(pending_ids(store.outbox.as_ref()).await, vec![announce.id]);
    }

    /// An attempt that held seats for a booking id another attempt already stored gives its seats
    /// back and answers the stored booking.
    pub async fn a_second_hold_for_a_stored_booking_gives_its_seats_back(
        repo: Arc<dyn BookingRepository>,
    ) {
        let inv = inventory(10);
        repo.add_inventory(&inv).await.expect("add");
        let booking = sample_booking(inv.event_id, "alice", 4);
        place_booking(repo.as_ref(), &booking, &sample_message())
            .await
            .expect("placed");
        // A stalled twin under the same id, which read "not stored" before the first stored it.
        let twin = repo.hold_seats(&booking).await.expect("twin hold");
        assert!(twin.fresh);
        assert_eq!(remaining(repo.as_ref(), inv.event_id).await, 2);
        assert_eq!(
            repo.store_held_booking(&twin, &sample_message()).await,
            Ok(Settled::AlreadyStored(booking.clone()))
        );
        assert_eq!(remaining(repo.as_ref(), inv.event_id).await, 6);
        let later = Utc::now() + chrono::TimeDelta::seconds(1);
        assert!(repo.stale_holds(later).await.expect("stale").is_empty());
    }

    /// Messages come out of the outbox in the order they were stored, batch after batch, also when
    /// a later message is stored in an older document (a cancellation of an early booking).
    pub async fn the_outbox_keeps_stored_order_across_batches(
        store: StoreUnderTest<dyn BookingRepository>,
    ) {
        let repo = store.repo.as_ref();
        let inv = inventory(100);
        repo.add_inventory(&inv).await.expect("add");
        let mut stored = Vec::new();
        let mut bookings = Vec::new();
        for i in 0..12 {
            let booking = sample_booking(inv.event_id, "alice", 1);
            let announce = sample_message();
            place_booking(repo, &booking, &announce)
                .await
                .expect("placed");
            stored.push(announce.id);
            bookings.push(booking);
            if i % 4 == 3 {
                // Cancel the oldest booking not yet cancelled: its document gets a newer message.
                let first = bookings.remove(0);
                let cancel = sample_message();
                repo.cancel_booking(first.id, Utc::now(), &cancel)
                    .await
                    .expect("cancel");
                stored.push(cancel.id);
            }
        }
        let mut relayed = Vec::new();
        loop {
            let batch = store.outbox.pending(5).await.expect("pending");
            if batch.is_empty() {
                break;
            }
            for message in batch {
                store
                    .outbox
                    .mark_published(std::slice::from_ref(&message.id))
                    .await
                    .expect("mark");
                relayed.push(message.id);
            }
        }
        assert_eq!(relayed, stored);
    }

    /// A batch of published messages leaves in one call, ids already gone or unknown skipped; the
    /// backlog counts every pending message, not one batch, and knows the oldest.
    pub async fn the_backlog_counts_every_pending_message(
        store: StoreUnderTest<dyn BookingRepository>,
    ) {
        assert_eq!(
            store.outbox.backlog().await.expect("backlog"),
            crate::Backlog::default()
        );
        let inv = inventory(100);
        store.repo.add_inventory(&inv).await.expect("add");
        let mut stored = Vec::new();
        for i in 0..12 {
            let message = sample_message();
            place_booking(
                store.repo.as_ref(),
                &sample_booking(inv.event_id, &format!("user {i}"), 1),
                &message,
            )
            .await
            .expect("place");
            stored.push(message);
        }
        let backlog = store.outbox.backlog().await.expect("backlog");
        assert_eq!(backlog.pending, 12);
        let millis = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_millis());
        assert_eq!(millis(backlog.oldest), millis(Some(stored[0].occurred_at)));
        let mut batch: Vec<String> = stored[..5].iter().map(|m| m.id.clone()).collect();
        batch.push(sample_message().id);
        store.outbox.mark_published(&batch).await.expect("mark");
        store
            .outbox
            .mark_published(&batch)
            .await
            .expect("mark again");
        let left: Vec<String> = stored[5..].iter().map(|m| m.id.clone()).collect();
        assert_eq!(pending_ids(store.outbox.as_ref()).await, left);
        let backlog = store.outbox.backlog().await.expect("backlog");
        assert_eq!(backlog.pending, 7);
        assert_eq!(millis(backlog.oldest), millis(Some(stored[5].occurred_at)));
        store.outbox.mark_published(&left).await.expect("mark");
        assert_eq!(
            store.outbox.backlog().await.expect("backlog"),
            crate::Backlog::default()
        );
    }

    /// One relay holds the claim at a time: it renews it, the others are refused until it releases
    /// it or its lease lapses, and then exactly one of them takes over.
    pub async fn one_relay_holds_the_claim_at_a_time(store: StoreUnderTest<dyn BookingRepository>) {
        let outbox = store.outbox;
        let long = std::time::Duration::from_secs(60);
        assert!(outbox.claim("relay a", long).await.expect("claim"));
        assert!(!outbox.claim("relay b", long).await.expect("claim"));
        assert!(outbox.claim("relay a", long).await.expect("renew"));
        outbox
            .release("relay b")
            .await
            .expect("release by a non-holder");
        assert!(!outbox.claim("relay b", long).await.expect("claim"));
        outbox.release("relay a").await.expect("release");
        assert!(outbox.claim("relay b", long).await.expect("take over"));
        assert!(!outbox.claim("relay a", long).await.expect("claim"));
        outbox.release("relay b").await.expect("release");

        let short = std::time::Duration::from_millis(300);
        assert!(outbox.claim("relay c", short).await.expect("claim"));
        assert!(!outbox.claim("relay d", long).await.expect("claim"));
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        let contenders = futures_util::future::join_all(
            ["relay d", "relay e", "relay f"].map(|relay| outbox.claim(relay, long)),
        )
        .await;
        let winners = contenders
            .into_iter()
            .map(|won| won.expect("claim"))
            .filter(|won| *won)
            .count();
        assert_eq!(winners, 1, "exactly one relay takes a lapsed claim over");
        assert!(!outbox.claim("relay c", long).await.expect("claim"));
    }

    /// Cancelling gives the seats back once; a second cancel changes nothing; unknown ids are said so.
    pub async fn cancelling_gives_the_seats_back_once(repo: Arc<dyn BookingRepository>) {
        let inv = inventory(5);
        repo.add_inventory(&inv).await.expect("add");
        let booking = sample_booking(inv.event_id, "alice", 3);
        place_booking(repo.as_ref(), &booking, &sample_message())
            .await
            .expect("place");
        let when = time(1_768_000_200);
        let mut cancelled = booking.clone();
        cancelled.cancelled_at = Some(when);
        assert_eq!(
            repo.cancel_booking(booking.id, when, &sample_message())
                .await,
            Ok(Cancellation::Cancelled(cancelled.clone()))
        );
        assert_eq!(
            repo.cancel_booking(booking.id, time(1_768_000_300), &sample_message())
                .await,
            Ok(Cancellation::AlreadyCancelled(cancelled.clone()))
        );
        let stored = repo
            .inventory(inv.event_id)
            .await
            .expect("get")
            .expect("known");
        assert_eq!(stored.remaining, SeatCount::new(5));
        assert_eq!(
            repo.booking(booking.id).await.expect("get"),
            Some(cancelled)
        );
        assert_eq!(
            repo.cancel_booking(BookingId::generate(), when, &sample_message())
                .await,
            Ok(Cancellation::NotFound)
        );
        // Nothing is left half returned for the reconciliation.
        let later = when + chrono::TimeDelta::hours(1);
        assert_eq!(repo.finish_seat_returns(later).await, Ok(0));
        // The seats are on sale again.
        place_booking(
            repo.as_ref(),
            &sample_booking(inv.event_id, "bob", 5),
            &sample_message(),
        )
        .await
        .expect("place");
    }

    /// Bookings list by event and by user, in pages.
    pub async fn lists_by_event_and_by_user(repo: Arc<dyn BookingRepository>) {
        let a = inventory(100);
        let b = inventory(100);
        repo.add_inventory(&a).await.expect("add");
        repo.add_inventory(&b).await.expect("add");
        let mut alice_on_a = Vec::new();
        for _ in 0..3 {
            let booking = sample_booking(a.event_id, "alice", 1);
            place_booking(repo.as_ref(), &booking, &sample_message())
                .await
                .expect("place");
            alice_on_a.push(booking);
        }
        let bob_on_a = sample_booking(a.event_id, "bob", 2);
        place_booking(repo.as_ref(), &bob_on_a, &sample_message())
            .await
            .expect("place");
        let alice_on_b = sample_booking(b.event_id, "alice", 1);
        place_booking(repo.as_ref(), &alice_on_b, &sample_message())
            .await
            .expect("place");

        let on_a = repo
            .bookings_for_event(a.event_id, PageRequest::first(100))
            .await
            .expect("list");
        // Listed in id order: by creation second, in no particular order within one (booking ids
        // are random after their seconds).
        let mut expected = alice_on_a.clone();
        expected.push(bob_on_a.clone());
        expected.sort_by_key(|b| b.id);
        assert_eq!(on_a, expected);

        let alice = UserId::parse("alice").expect("user");
        let mut alices = alice_on_a.clone();
        alices.push(alice_on_b);
        alices.sort_by_key(|b| b.id);
        let first = repo
            .bookings_for_user(&alice, PageRequest::first(2))
            .await
            .expect("list");
        assert_eq!(first, alices[..2]);
        let rest = repo
            .bookings_for_user(&alice, PageRequest::new(Some(first[1].id.object_id()), 10))
            .await
            .expect("list");
        assert_eq!(rest, alices[2..]);
        let nobody = UserId::parse("carol").expect("user");
        assert!(
            repo.bookings_for_user(&nobody, PageRequest::first(10))
                .await
                .expect("list")
                .is_empty()
        );
    }
}

/// Checks of [`crate::IdempotencyRepository`] adapters.
pub mod idempotency {
    use std::sync::Arc;
    use std::time::Duration;

    use chrono::{DateTime, TimeDelta, Utc};

    use crate::{
        Begin, IdempotencyRepository, IdempotencyScope, IdempotentRequest, StoredResponse,
    };

    const LEASE: Duration = Duration::from_secs(30);
    const TTL: Duration = Duration::from_secs(24 * 3600);

    fn scope(user: &str) -> IdempotencyScope {
        IdempotencyScope {
            user: user.to_owned(),
            key: format!("key-{}", myevents_domain::id::ObjectId::generate()),
        }
    }

    /// Now, to the millisecond (what every store keeps).
    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp_millis(Utc::now().timestamp_millis()).expect("a valid time")
    }

    fn request(fingerprint: &str, resource_id: &str, now: DateTime<Utc>) -> IdempotentRequest {
        IdempotentRequest {
            fingerprint: fingerprint.to_owned(),
            resource_id: resource_id.to_owned(),
            now,
            lease: LEASE,
            ttl: TTL,
        }
    }

    fn response(body: &str) -> StoredResponse {
        StoredResponse {
            status: 201,
            location: Some("/bookings/1".to_owned()),
            content_type: Some("application/json".to_owned()),
            body: body.as_bytes().to_vec(),
        }
    }

    async fn start(
        repo: &dyn IdempotencyRepository,
        scope: &IdempotencyScope,
        request: &IdempotentRequest,
    ) -> (String, String, bool) {
        match repo.begin(scope, request).await.expect("begin") {
            Begin::Started {
                token,
                resource_id,
                resumed,
            } => (token, resource_id, resumed),
            other => panic!("expected Started, got {other:?}"),
        }
    }

    /// The first use starts the key with the request's resource id; after completion the same
    /// request gets the stored response.
    pub async fn a_completed_key_replays_its_response(repo: Arc<dyn IdempotencyRepository>) {
        let scope = scope("alice");
        let t0 = now();
        let (token, resource, resumed) =
            start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
        assert_eq!((resource.as_str(), resumed), ("r1", false));
        assert!(
            repo.complete(&scope, &token, &response("{\"id\":1}"))
                .await
                .expect("complete")
        );
        let again = repo
            .begin(&scope, &request("f", "r2", t0 + TimeDelta::seconds(5)))
            .await;
        assert_eq!(
            again.expect("begin"),
            Begin::Completed(response("{\"id\":1}"))
        );
        // Completing twice changes nothing.
        assert!(
            !repo
                .complete(&scope, &token, &response("other"))
                .await
                .expect("complete")
        );
        let after = repo
            .begin(&scope, &request("f", "r3", t0))
            .await
            .expect("begin");
        assert_eq!(after, Begin::Completed(response("{\"id\":1}")));
    }

    /// A key reused with a different request is refused, in flight or completed.
    pub async fn a_key_reused_for_another_request_is_a_mismatch(
        repo: Arc<dyn IdempotencyRepository>,
    ) {
        let scope = scope("alice");
        let t0 = now();
        let (token, _, _) = start(repo.as_ref(), &scope, &request("f1", "r1", t0)).await;
        let other = repo
            .begin(&scope, &request("f2", "r2", t0))
            .await
            .expect("begin");
        assert_eq!(other, Begin::Mismatch);
        assert!(
            repo.complete(&scope, &token, &response("x"))
                .await
                .expect("complete")
        );
        let other = repo
            .begin(&scope, &request("f2", "r2", t0))
            .await
            .expect("begin");
        assert_eq!(other, Begin::Mismatch);
    }

    /// While a request holds the key others are told it is in flight; once its lease ends the next
    /// one resumes it with the first resource id, and the first request's token no longer counts.
    pub async fn a_key_in_flight_is_refused_then_resumed_after_its_lease(
        repo: Arc<dyn IdempotencyRepository>,
    ) {
        let scope = scope("alice");
        let t0 = now();
        let (first, _, _) = start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
        let during = repo
            .begin(&scope, &request("f", "r2", t0 + TimeDelta::seconds(29)))
            .await
            .expect("begin");
        assert_eq!(during, Begin::InFlight);
        let later = request("f", "r3", t0 + TimeDelta::seconds(31));
        let (second, resource, resumed) = start(repo.as_ref(), &scope, &later).await;
        assert_eq!((resource.as_str(), resumed), ("r1", true));
        assert!(
            !repo
                .complete(&scope, &first, &response("late"))
                .await
                .expect("complete")
        );
        assert!(
            repo.complete(&scope, &second, &response("ok"))
                .await
                .expect("complete")
        );
        let replay = repo.begin(&scope, &later).await.expect("begin");
        assert_eq!(replay, Begin::Completed(response("ok")));
    }

    /// A released key is resumed at once by the next request, with the same resource id.
    pub async fn a_released_key_is_resumed_at_once(repo: Arc<dyn IdempotencyRepository>) {
        let scope = scope("alice");
        let t0 = now();
        let (token, _, _) = start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
        repo.release(&scope, &token).await.expect("release");
        let (_, resource, resumed) = start(repo.as_ref(), &scope, &request("f", "r2", t0)).await;
        assert_eq!((resource.as_str(), resumed), ("r1", true));
    }

    /// A renewed lease holds the key past its first end; only the holder can renew, and only until
    /// the key has its response.
    pub async fn a_renewed_lease_holds_the_key_until_it_lapses(
        repo: Arc<dyn IdempotencyRepository>,
    ) {
        let scope = scope("alice");
        let t0 = now();
        let (token, _, _) = start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
        let renewed_until = t0 + TimeDelta::seconds(60);
        assert!(
            repo.renew(&scope, &token, renewed_until)
                .await
                .expect("renew")
        );
        assert!(
            !repo
                .renew(
                    &scope,
                    "not-the-token",
                    renewed_until + TimeDelta::seconds(60)
                )
                .await
                .expect("renew")
        );
        let during = repo
            .begin(&scope, &request("f", "r2", t0 + TimeDelta::seconds(45)))
            .await
            .expect("begin");
        assert_eq!(during, Begin::InFlight);
        let after = request("f", "r3", t0 + TimeDelta::seconds(61));
        let (second, resource, resumed) = start(repo.as_ref(), &scope, &after).await;
        assert_eq!((resource.as_str(), resumed), ("r1", true));
        assert!(
            !repo
                .renew(&scope, &token, renewed_until)
                .await
                .expect("renew"),
            "the lease was lost"
        );
        assert!(
            repo.complete(&scope, &second, &response("ok"))
                .await
                .expect("complete")
        );
        assert!(
            !repo
                .renew(&scope, &second, renewed_until)
                .await
                .expect("renew"),
            "completed"
        );
    }

    /// The same key of two users are two keys.
    pub async fn keys_are_scoped_per_user(repo: Arc<dyn IdempotencyRepository>) {
        let alice = scope("alice");
        let bob = IdempotencyScope {
            user: "bob".to_owned(),
            key: alice.key.clone(),
        };
        let t0 = now();
        let (token, _, _) = start(repo.as_ref(), &alice, &request("f", "r1", t0)).await;
        assert!(
            repo.complete(&alice, &token, &response("alice"))
                .await
                .expect("complete")
        );
        let (_, resource, resumed) = start(repo.as_ref(), &bob, &request("g", "r2", t0)).await;
        assert_eq!((resource.as_str(), resumed), ("r2", false));
    }

    /// After its time to live a key counts as never used.
    pub async fn an_expired_key_starts_afresh(repo: Arc<dyn IdempotencyRepository>) {
        let scope = scope("alice");
        let t0 = now();
        let (token, _, _) = start(repo.as_ref(), &scope, &request("f", "r1", t0)).await;
        assert!(
            repo.complete(&scope, &token, &response("old"))
                .await
                .expect("complete")
        );
        let later = t0 + TimeDelta::from_std(TTL).expect("ttl") + TimeDelta::seconds(1);
        let (_, resource, resumed) = start(repo.as_ref(), &scope, &request("g", "r2", later)).await;
        assert_eq!((resource.as_str(), resumed), ("r2", false));
    }

    /// Of 20 concurrent requests with one key exactly one starts; the others see it in flight.
    pub async fn concurrent_requests_with_one_key_start_once(repo: Arc<dyn IdempotencyRepository>) {
        let scope = scope("alice");
        let t0 = now();
        let attempts = (0..20).map(|i| {
            let repo = Arc::clone(&repo);
            let scope = scope.clone();
            tokio::spawn(async move {
                repo.begin(&scope, &request("f", &format!("r{i}"), t0))
                    .await
            })
        });
        let mut started = 0;
        for attempt in futures_util::future::join_all(attempts).await {
            match attempt.expect("task").expect("begin") {
                Begin::Started { .. } => started += 1,
                Begin::InFlight => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(started, 1);
    }
}

/// Expands to one test per [`idempotency`] check. The argument is an async expression evaluating to a
/// fresh `Arc<dyn IdempotencyRepository>`.
#[macro_export]
macro_rules! idempotency_repository_conformance {
    ($make:expr) => {
        $crate::__idempotency_tests!($make;
            a_completed_key_replays_its_response, a_key_reused_for_another_request_is_a_mismatch,
            a_key_in_flight_is_refused_then_resumed_after_its_lease,
            a_released_key_is_resumed_at_once, a_renewed_lease_holds_the_key_until_it_lapses,
            keys_are_scoped_per_user,
            an_expired_key_starts_afresh, concurrent_requests_with_one_key_start_once);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __idempotency_tests {
    ($make:expr; $($check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let repo = $make.await;
                $crate::conformance::idempotency::$check(repo).await;
            }
        )+
    };
}

/// Expands to one test per [`locations`] check. The argument is an async expression evaluating to a
/// [`StoreUnderTest`] of `dyn LocationRepository` that is fresh and empty each time.
#[macro_export]
macro_rules! location_repository_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!(locations, $make;
            stores_and_reads_back, rejects_a_duplicate_id, lists_in_pages;
            announces_through_the_outbox);
    };
}

/// Expands to one test per [`events`] check (see [`location_repository_conformance!`]).
#[macro_export]
macro_rules! event_repository_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!(events, $make;
            stores_and_reads_back, rejects_a_duplicate_id, finds_the_oldest_by_exact_name,
            lists_in_pages, records_booked_seats_once_per_message, concurrent_duplicates_count_once,
            an_old_message_after_five_thousand_newer_counts_once;
            announces_through_the_outbox);
    };
}

/// Expands to one test per [`bookings`] check (see [`location_repository_conformance!`]).
#[macro_export]
macro_rules! booking_repository_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!(bookings, $make;
            adding_an_inventory_is_idempotent, placing_takes_seats_until_sold_out,
            placing_for_an_unknown_event_is_refused, concurrent_bookings_never_oversell,
            an_inventory_appearing_mid_booking_is_never_reported_sold_out,
            cancelling_gives_the_seats_back_once, lists_by_event_and_by_user,
            a_second_hold_for_a_stored_booking_gives_its_seats_back;
            announces_placed_bookings_only, an_interrupted_booking_is_finished_from_its_hold_once,
            the_outbox_keeps_stored_order_across_batches, the_backlog_counts_every_pending_message,
            one_relay_holds_the_claim_at_a_time);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($module:ident, $make:expr; $($check:ident),+ $(,)?; $($store_check:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let store = $make.await;
                $crate::conformance::$module::$check(store.repo).await;
            }
        )+
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $store_check() {
                let store = $make.await;
                $crate::conformance::$module::$store_check(store).await;
            }
        )+
    };
}
