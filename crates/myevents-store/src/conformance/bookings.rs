//! Checks on [`BookingRepository`], the outbox and relay claim of its store included.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use myevents_domain::booking::{Booking, SeatInventory, UserId, WaitlistEntry};
use myevents_domain::event::EventCancellation;
use myevents_domain::id::{BookingId, EventId, WaitlistEntryId};
use myevents_domain::seats::SeatCount;

use super::{
    StoreUnderTest, pending_ids, place_booking, place_sample, sample_booking, sample_message, time,
};
use crate::{
    BookingRepository, Cancellation, InventoryChange, InventoryChanged, JoinWaitlistError,
    PageRequest, PlaceBookingError, SeatHold, Settled,
};

fn inventory(seats: u32) -> SeatInventory {
    SeatInventory::new(
        EventId::generate(),
        "opera aida".to_owned(),
        SeatCount::new(seats),
    )
    .organised_by(UserId::parse("organiser-1").ok())
}

/// The inventory of `event_id` as `repo` stores it.
///
/// # Panics
/// When it cannot be read or is not there.
async fn stored_inventory(repo: &dyn BookingRepository, event_id: EventId) -> SeatInventory {
    repo.inventory(event_id).await.expect("get").expect("known")
}

/// Adding an inventory twice keeps the first and its remaining seats.
pub async fn adding_an_inventory_is_idempotent(repo: Arc<dyn BookingRepository>) {
    let inv = inventory(10);
    assert!(repo.add_inventory(&inv).await.expect("add"));
    place_sample(repo.as_ref(), inv.event_id, "alice", 4)
        .await
        .expect("place");
    assert!(!repo.add_inventory(&inv).await.expect("add again"));
    let stored = stored_inventory(repo.as_ref(), inv.event_id).await;
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
        place_sample(repo.as_ref(), inv.event_id, "bob", 2).await,
        Ok(SeatCount::new(0))
    );
    let stored = stored_inventory(repo.as_ref(), inv.event_id).await;
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
    let refused = place_sample(store.repo.as_ref(), inv.event_id, "bob", 1).await;
    assert!(matches!(refused, Err(PlaceBookingError::SoldOut { .. })));
    let unknown = place_sample(store.repo.as_ref(), EventId::generate(), "bob", 1).await;
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
            tokio::spawn(
                async move { place_booking(repo.as_ref(), &booking, &sample_message()).await },
            )
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
    let stored = stored_inventory(repo.as_ref(), inv.event_id).await;
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
    let hold = repo.hold_seats(&booking, None).await.expect("hold");
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
    let found = repo.hold_seats(&retry, None).await.expect("hold again");
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
    let twin = repo.hold_seats(&booking, None).await.expect("twin hold");
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
    let stored = stored_inventory(repo.as_ref(), inv.event_id).await;
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
    place_sample(repo.as_ref(), inv.event_id, "bob", 5)
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

fn storm() -> EventCancellation {
    EventCancellation {
        at: time(1_768_000_500),
        reason: "storm".to_owned(),
    }
}

fn edited(capacity: u32) -> InventoryChange {
    InventoryChange::Edited {
        name: "opera tosca".to_owned(),
        capacity: SeatCount::new(capacity),
        organiser: UserId::parse("organiser-1").ok(),
    }
}

/// An edit moves the remaining seats by the capacity's difference, never below the seats booked
/// and held; a revision applies once, and an older one after a newer one not at all.
pub async fn an_edit_resizes_the_inventory_never_below_the_seats_taken(
    repo: Arc<dyn BookingRepository>,
) {
    let inv = inventory(10);
    repo.add_inventory(&inv).await.expect("add");
    place_sample(repo.as_ref(), inv.event_id, "alice", 4)
        .await
        .expect("place");
    // Seats held for a booking not stored yet are taken too.
    repo.hold_seats(&sample_booking(inv.event_id, "bob", 2), None)
        .await
        .expect("hold");
    let grown = repo
        .change_inventory(inv.event_id, 1, &edited(15))
        .await
        .expect("change");
    let InventoryChanged::Applied(grown) = grown else {
        panic!("not applied: {grown:?}");
    };
    assert_eq!(
        (grown.capacity, grown.remaining, grown.revision),
        (SeatCount::new(15), SeatCount::new(9), 1)
    );
    assert_eq!(grown.event_name, "opera tosca");
    assert!(matches!(
        repo.change_inventory(inv.event_id, 1, &edited(20)).await,
        Ok(InventoryChanged::Stale(_))
    ));
    let shrunk = repo
        .change_inventory(inv.event_id, 3, &edited(2))
        .await
        .expect("change");
    assert!(matches!(shrunk, InventoryChanged::Applied(_)), "{shrunk:?}");
    let stored = stored_inventory(repo.as_ref(), inv.event_id).await;
    assert_eq!(
        (stored.capacity, stored.remaining, stored.revision),
        (SeatCount::new(6), SeatCount::new(0), 3),
        "never below the 6 seats booked and held"
    );
    assert!(matches!(
        repo.change_inventory(inv.event_id, 2, &edited(100)).await,
        Ok(InventoryChanged::Stale(_))
    ));
    assert_eq!(stored_inventory(repo.as_ref(), inv.event_id).await, stored);
    assert!(matches!(
        place_sample(repo.as_ref(), inv.event_id, "carol", 1).await,
        Err(PlaceBookingError::SoldOut { .. })
    ));
}

/// A change of an event not known yet teaches it (an edit with all its seats; a cancellation with
/// none), and its creation, arriving later, changes nothing.
pub async fn a_change_before_the_creation_teaches_the_event(repo: Arc<dyn BookingRepository>) {
    let inv = inventory(10);
    let learned = repo
        .change_inventory(inv.event_id, 2, &edited(50))
        .await
        .expect("change");
    assert!(
        matches!(learned, InventoryChanged::Applied(_)),
        "{learned:?}"
    );
    assert!(!repo.add_inventory(&inv).await.expect("created later"));
    let stored = stored_inventory(repo.as_ref(), inv.event_id).await;
    assert_eq!(
        (stored.capacity, stored.remaining, stored.revision),
        (SeatCount::new(50), SeatCount::new(50), 2)
    );
    let other = inventory(10);
    let cancellation = storm();
    repo.change_inventory(
        other.event_id,
        1,
        &InventoryChange::Cancelled(cancellation.clone()),
    )
    .await
    .expect("cancel");
    assert!(!repo.add_inventory(&other).await.expect("created later"));
    assert_eq!(
        stored_inventory(repo.as_ref(), other.event_id)
            .await
            .cancelled,
        Some(cancellation)
    );
    assert_eq!(
        place_sample(repo.as_ref(), other.event_id, "alice", 1).await,
        Err(PlaceBookingError::EventCancelled)
    );
}

/// A cancelled event refuses bookings; its bookings are cancelled once each, with the reason and
/// a message each, their seats not sold again; a booking held before the cancellation and stored
/// after it keeps the event unsettled until it is cancelled too.
pub async fn cancelling_an_event_cancels_each_booking_once(
    store: StoreUnderTest<dyn BookingRepository>,
) {
    let repo = store.repo;
    let inv = inventory(10);
    repo.add_inventory(&inv).await.expect("add");
    let alice = sample_booking(inv.event_id, "alice", 2);
    let bob = sample_booking(inv.event_id, "bob", 3);
    for booking in [&alice, &bob] {
        place_booking(repo.as_ref(), booking, &sample_message())
            .await
            .expect("place");
    }
    let late = sample_booking(inv.event_id, "carol", 1);
    let hold = repo.hold_seats(&late, None).await.expect("hold");
    let at = storm().at;
    let applied = repo
        .change_inventory(inv.event_id, 1, &InventoryChange::Cancelled(storm()))
        .await
        .expect("cancel");
    assert!(
        matches!(applied, InventoryChanged::Applied(_)),
        "{applied:?}"
    );
    assert_eq!(
        place_sample(repo.as_ref(), inv.event_id, "dave", 1).await,
        Err(PlaceBookingError::EventCancelled)
    );
    let announced = std::sync::Mutex::new(Vec::new());
    let announce = |booking: &Booking| {
        let message = sample_message();
        announced
            .lock()
            .expect("lock")
            .push((booking.id, message.id.clone()));
        message
    };
    let first = repo
        .cancel_event_bookings(inv.event_id, at, "storm", &announce)
        .await
        .expect("cancel bookings");
    let mut ids: Vec<BookingId> = first.cancelled.iter().map(|b| b.id).collect();
    ids.sort();
    let mut expected = vec![alice.id, bob.id];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(!first.settled, "carol's hold may still become a booking");
    let unsettled = repo.unsettled_cancelled_events().await.expect("unsettled");
    assert_eq!(
        unsettled.iter().map(|i| i.event_id).collect::<Vec<_>>(),
        [inv.event_id]
    );
    repo.store_held_booking(&hold, &sample_message())
        .await
        .expect("stored late");
    let second = repo
        .cancel_event_bookings(inv.event_id, at, "storm", &announce)
        .await
        .expect("cancel bookings");
    assert_eq!(
        second.cancelled.iter().map(|b| b.id).collect::<Vec<_>>(),
        [late.id]
    );
    assert!(second.settled);
    assert!(
        repo.unsettled_cancelled_events()
            .await
            .expect("unsettled")
            .is_empty()
    );
    let third = repo
        .cancel_event_bookings(inv.event_id, at, "storm", &announce)
        .await
        .expect("again");
    assert!(third.cancelled.is_empty());
    let stored = repo.booking(alice.id).await.expect("get").expect("stored");
    assert_eq!(stored.cancelled_at, Some(at));
    assert_eq!(stored.cancel_reason.as_deref(), Some("storm"));
    // One message per booking, each in the outbox.
    let announced = announced.into_inner().expect("lock");
    assert_eq!(announced.len(), 3);
    let pending = pending_ids(store.outbox.as_ref()).await;
    assert!(announced.iter().all(|(_, id)| pending.contains(id)));
    // The seats are not sold again; a buyer's own cancellation now changes nothing.
    assert_eq!(
        stored_inventory(repo.as_ref(), inv.event_id)
            .await
            .remaining,
        SeatCount::new(4)
    );
    assert!(matches!(
        repo.cancel_booking(alice.id, time(1_768_000_600), &sample_message())
            .await,
        Ok(Cancellation::AlreadyCancelled(_))
    ));
}

/// A buyer's hold takes its seats until it is claimed (then stored as the booking), released or
/// lapsed (its seats back), each at most once whoever tries, also at once; it is never taken for
/// an interrupted booking, and is stored only once claimed.
pub async fn a_buyers_hold_is_claimed_released_or_lapses_once(repo: Arc<dyn BookingRepository>) {
    let inv = inventory(10);
    repo.add_inventory(&inv).await.expect("add");
    let expires = chrono::Utc::now() + chrono::TimeDelta::hours(1);
    let expires = DateTime::from_timestamp(expires.timestamp(), 0).expect("time");
    let hold = |user: &str, seats: u32, expires_at: DateTime<Utc>| {
        let repo = Arc::clone(&repo);
        let booking = sample_booking(inv.event_id, user, seats);
        async move {
            repo.hold_seats(&booking, Some(expires_at))
                .await
                .expect("hold")
        }
    };
    let alice = hold("alice", 3, expires).await;
    assert!(alice.fresh);
    assert_eq!(
        (alice.remaining, alice.expires_at),
        (SeatCount::new(7), Some(expires))
    );
    let found = repo
        .seat_hold(alice.booking.id)
        .await
        .expect("read")
        .expect("held");
    assert_eq!(
        (found.attempt.as_str(), found.expires_at),
        (alice.attempt.as_str(), Some(expires))
    );
    let far = expires + chrono::TimeDelta::days(1);
    assert!(
        repo.stale_holds(far).await.expect("stale").is_empty(),
        "not an interrupted booking"
    );
    assert!(
        repo.store_held_booking(&alice, &sample_message())
            .await
            .is_err(),
        "not claimed"
    );
    let now = chrono::Utc::now();
    assert!(repo.claim_hold(&alice, now).await.expect("claim"));
    assert!(!repo.claim_hold(&alice, now).await.expect("claim again"));
    assert!(
        !repo.release_hold(&alice, None).await.expect("release"),
        "claimed"
    );
    let claimed = SeatHold {
        expires_at: None,
        ..alice.clone()
    };
    repo.store_held_booking(&claimed, &sample_message())
        .await
        .expect("stored");
    assert!(
        repo.seat_hold(alice.booking.id)
            .await
            .expect("read")
            .is_none()
    );
    assert!(
        repo.booking(alice.booking.id)
            .await
            .expect("read")
            .is_some()
    );

    let bob = hold("bob", 2, expires).await;
    assert!(repo.release_hold(&bob, None).await.expect("release"));
    assert!(!repo.release_hold(&bob, None).await.expect("again"));
    assert!(
        !repo.claim_hold(&bob, now).await.expect("claim"),
        "released"
    );
    assert_eq!(
        stored_inventory(repo.as_ref(), inv.event_id)
            .await
            .remaining,
        SeatCount::new(7)
    );

    // A hold lapses at its time, not before; a lapsed hold cannot be claimed.
    let soon = DateTime::from_timestamp(now.timestamp() + 60, 0).expect("time");
    let carol = hold("carol", 4, soon).await;
    let before = soon - chrono::TimeDelta::milliseconds(1);
    let lapsed_ids =
        |holds: Vec<SeatHold>| holds.into_iter().map(|h| h.booking.id).collect::<Vec<_>>();
    assert!(
        !lapsed_ids(repo.lapsed_holds(before).await.expect("lapsed")).contains(&carol.booking.id)
    );
    assert_eq!(
        lapsed_ids(repo.lapsed_holds(soon).await.expect("lapsed")),
        [carol.booking.id]
    );
    assert!(
        !repo
            .release_hold(&carol, Some(before))
            .await
            .expect("not lapsed yet")
    );
    assert!(
        !repo.claim_hold(&carol, soon).await.expect("claim"),
        "lapsed"
    );
    // Every replica's lapse job at once: the seats go back once.
    let releases = futures_util::future::join_all((0..8).map(|_| {
        let repo = Arc::clone(&repo);
        let carol = carol.clone();
        async move {
            repo.release_hold(&carol, Some(soon))
                .await
                .expect("release")
        }
    }))
    .await;
    assert_eq!(releases.into_iter().filter(|released| *released).count(), 1);
    assert_eq!(
        stored_inventory(repo.as_ref(), inv.event_id)
            .await
            .remaining,
        SeatCount::new(7)
    );
    assert!(repo.lapsed_holds(far).await.expect("lapsed").is_empty());

    // Its buyer confirming and the lapse job racing at its last moment: one of them wins.
    let dave = hold("dave", 1, soon).await;
    let (claimed, released) = tokio::join!(
        repo.claim_hold(&dave, before),
        repo.release_hold(&dave, Some(soon))
    );
    assert!(
        claimed.expect("claim") != released.expect("release"),
        "exactly one wins"
    );
}

fn waiting(event_id: EventId, user: &str, seats: u32) -> WaitlistEntry {
    WaitlistEntry {
        id: WaitlistEntryId::generate(),
        event_id,
        user_id: UserId::parse(user).expect("user"),
        seats: SeatCount::new(seats),
        joined_at: time(1_768_000_100),
        offer: None,
        place: None,
    }
}

/// A waitlist takes buyers only while the seats they want are not on sale; seats that come back
/// are offered first come first served (each offer a buyer's hold, made once), and nobody
/// overtakes the first buyer still waiting; until then nobody else books; an entry can leave, and
/// one whose offer lapsed leaves its list.
pub async fn the_waitlist_is_offered_seats_first_come_first_served(
    repo: Arc<dyn BookingRepository>,
) {
    let inv = inventory(5);
    repo.add_inventory(&inv).await.expect("add");
    let open = inventory(10);
    repo.add_inventory(&open).await.expect("add");
    assert!(matches!(
        repo.join_waitlist(&waiting(open.event_id, "bob", 2)).await,
        Err(JoinWaitlistError::SeatsAvailable { .. })
    ));
    assert_eq!(
        repo.join_waitlist(&waiting(EventId::generate(), "bob", 2))
            .await,
        Err(JoinWaitlistError::EventNotFound)
    );
    let alice = sample_booking(inv.event_id, "alice", 5);
    place_booking(repo.as_ref(), &alice, &sample_message())
        .await
        .expect("sold out");
    let mut entries = Vec::new();
    for (user, seats) in [("bob", 2), ("carol", 3), ("dave", 1)] {
        let entry = waiting(inv.event_id, user, seats);
        let joined = repo.join_waitlist(&entry).await.expect("join");
        assert_eq!(
            joined.place,
            Some(u32::try_from(entries.len() + 1).expect("place"))
        );
        entries.push(entry);
    }
    let again = repo.join_waitlist(&entries[0]).await.expect("again");
    assert_eq!(again.place, Some(1), "a retry is answered, not added twice");
    let now = chrono::Utc::now();
    let expires = now + chrono::TimeDelta::minutes(10);
    let expires = DateTime::from_timestamp(expires.timestamp(), 0).expect("time");
    assert!(
        repo.offer_to_waitlists(now, expires)
            .await
            .expect("offer")
            .is_empty()
    );

    // Alice's 5 seats come back: bob (2) and carol (3) are offered them, dave waits on.
    repo.cancel_booking(alice.id, time(1_768_000_200), &sample_message())
        .await
        .expect("cancel");
    let offered = repo.offer_to_waitlists(now, expires).await.expect("offer");
    let ids: Vec<_> = offered.iter().map(|e| e.id).collect();
    assert_eq!(
        ids,
        [entries[0].id, entries[1].id],
        "in the order they joined"
    );
    let bob_offer = offered[0].offer.clone().expect("offer");
    assert_eq!(bob_offer.expires_at, expires);
    let hold = repo
        .seat_hold(bob_offer.hold_id)
        .await
        .expect("read")
        .expect("a hold in bob's name");
    assert_eq!(
        (hold.booking.user_id.as_str(), hold.booking.seats),
        ("bob", SeatCount::new(2))
    );
    assert_eq!(hold.expires_at, Some(expires));
    assert!(
        repo.offer_to_waitlists(now, expires)
            .await
            .expect("again")
            .is_empty()
    );
    let dave = repo
        .waitlist_entry(entries[2].id)
        .await
        .expect("read")
        .expect("on the list");
    assert_eq!((dave.place, &dave.offer), (Some(1), &None));
    let bob = repo
        .waitlist_entry(entries[0].id)
        .await
        .expect("read")
        .expect("on the list");
    assert_eq!((bob.place, &bob.offer), (None, &Some(bob_offer)));
    assert_eq!(
        repo.waitlist_of_user(&UserId::parse("dave").expect("user"))
            .await
            .expect("list"),
        [dave]
    );
    // One snapshot shows it all: on sale + held + booked = capacity, the list in joining order.
    let snapshot = repo
        .inventory_snapshot(inv.event_id)
        .await
        .expect("read")
        .expect("known");
    let held: u32 = snapshot.holds.iter().map(|h| h.booking.seats.get()).sum();
    assert_eq!(
        (snapshot.inventory.remaining.get(), held),
        (0, 5),
        "bob's and carol's offers hold alice's 5 seats"
    );
    let order: Vec<_> = snapshot.waitlist.iter().map(|e| (e.id, e.place)).collect();
    assert_eq!(
        order,
        [
            (entries[0].id, None),
            (entries[1].id, None),
            (entries[2].id, Some(1))
        ]
    );
    assert!(
        repo.inventory_snapshot(EventId::generate())
            .await
            .expect("read")
            .is_none()
    );
    // While dave waits, nobody else books.
    assert!(matches!(
        place_sample(repo.as_ref(), inv.event_id, "erin", 1).await,
        Err(PlaceBookingError::SoldOut { .. })
    ));

    // Bob lets his offer go: dave gets one seat of it, then others book again.
    assert!(repo.release_hold(&hold, None).await.expect("release"));
    let offered = repo.offer_to_waitlists(now, expires).await.expect("offer");
    assert_eq!(
        offered.iter().map(|e| e.id).collect::<Vec<_>>(),
        [entries[2].id]
    );
    place_sample(repo.as_ref(), inv.event_id, "erin", 1)
        .await
        .expect("nobody waits any more");

    assert!(repo.leave_waitlist(entries[1].id).await.expect("leave"));
    assert!(!repo.leave_waitlist(entries[1].id).await.expect("again"));
    // Once its offer lapsed, an entry leaves its list.
    let later = expires + chrono::TimeDelta::seconds(1);
    repo.offer_to_waitlists(later, later + chrono::TimeDelta::minutes(10))
        .await
        .expect("sweep");
    assert!(
        repo.waitlist_entry(entries[0].id)
            .await
            .expect("read")
            .is_none()
    );

    // The first buyer waiting is not overtaken by a smaller wish.
    let small = inventory(3);
    repo.add_inventory(&small).await.expect("add");
    let one = sample_booking(small.event_id, "frank", 1);
    place_booking(repo.as_ref(), &one, &sample_message())
        .await
        .expect("place");
    place_sample(repo.as_ref(), small.event_id, "gina", 2)
        .await
        .expect("place");
    let big = waiting(small.event_id, "hugo", 3);
    let little = waiting(small.event_id, "ivy", 1);
    for entry in [&big, &little] {
        repo.join_waitlist(entry).await.expect("join");
    }
    repo.cancel_booking(one.id, time(1_768_000_300), &sample_message())
        .await
        .expect("cancel");
    assert!(
        repo.offer_to_waitlists(now, expires)
            .await
            .expect("offer")
            .is_empty()
    );
    assert_eq!(
        repo.waitlist_entry(little.id)
            .await
            .expect("read")
            .expect("on the list")
            .place,
        Some(2)
    );
}

/// Expands to one test per [`bookings`](crate::conformance::bookings) check (see
/// [`location_repository_conformance!`](crate::location_repository_conformance!)).
#[macro_export]
macro_rules! booking_repository_conformance {
    ($make:expr) => {
        $crate::__conformance_tests!(bookings, $make;
            adding_an_inventory_is_idempotent, placing_takes_seats_until_sold_out,
            placing_for_an_unknown_event_is_refused, concurrent_bookings_never_oversell,
            an_inventory_appearing_mid_booking_is_never_reported_sold_out,
            cancelling_gives_the_seats_back_once, lists_by_event_and_by_user,
            a_second_hold_for_a_stored_booking_gives_its_seats_back,
            an_edit_resizes_the_inventory_never_below_the_seats_taken,
            a_change_before_the_creation_teaches_the_event,
            a_buyers_hold_is_claimed_released_or_lapses_once,
            the_waitlist_is_offered_seats_first_come_first_served;
            announces_placed_bookings_only, cancelling_an_event_cancels_each_booking_once, an_interrupted_booking_is_finished_from_its_hold_once,
            the_outbox_keeps_stored_order_across_batches, the_backlog_counts_every_pending_message,
            one_relay_holds_the_claim_at_a_time);
    };
}
