//! The repository conformance suite: one set of checks every adapter of every port must pass, the
//! in-memory adapters and the real ones against real servers alike.
//!
//! Each check takes a fresh, empty repository. The macros [`location_repository_conformance!`](crate::location_repository_conformance),
//! [`event_repository_conformance!`](crate::event_repository_conformance) and [`booking_repository_conformance!`](crate::booking_repository_conformance) expand to one `#[tokio::test]`
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
use myevents_domain::booking::{Booking, UserId};
use myevents_domain::event::Event;
use myevents_domain::id::{BookingId, EventId, LocationId};
use myevents_domain::location::{Hall, Location};
use myevents_domain::seats::SeatCount;

use myevents_domain::messages::{DomainEvent, EventBooked, OutboxMessage};

use crate::{BookingRepository, Outbox, PlaceBookingError};

pub mod bookings;
pub mod events;
pub mod idempotency;
pub mod locations;

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
    let hold = repo.hold_seats(booking, None).await?;
    repo.store_held_booking(&hold, announce).await?;
    Ok(hold.remaining)
}

/// Places [`sample_booking`]`(event_id, user, seats)`, announced by [`sample_message`], as
/// [`place_booking`] does.
///
/// # Errors
/// What [`place_booking`] returns.
pub async fn place_sample(
    repo: &dyn BookingRepository,
    event_id: EventId,
    user: &str,
    seats: u32,
) -> Result<SeatCount, PlaceBookingError> {
    place_booking(
        repo,
        &sample_booking(event_id, user, seats),
        &sample_message(),
    )
    .await
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

/// A location with two halls (100 and 50 seats) named `name`, created by `organiser-1`.
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
        organiser: UserId::parse("organiser-1").ok(),
        revision: 0,
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
        revision: 0,
        cancelled: None,
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
        cancel_reason: None,
    }
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
