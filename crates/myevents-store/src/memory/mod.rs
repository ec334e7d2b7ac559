//! In-memory adapters: every port kept in process memory behind a lock. Nothing survives a restart;
//! they serve the embedded mode and unit tests, and pass the same conformance suite as the real adapters.
//! Repositories built with one [`InMemoryOutbox`] put their messages in it while they hold their own
//! lock, so a state change and its message appear together.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use myevents_domain::id::ObjectId;

use crate::PageRequest;

mod bookings;
mod events;
mod idempotency;
mod outbox;

pub use bookings::InMemoryBookingRepository;
pub use events::{InMemoryEventRepository, InMemoryLocationRepository};
pub use idempotency::InMemoryIdempotencyRepository;
pub use outbox::InMemoryOutbox;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves the maps consistent (every write is one insert), so the
    // data is still usable.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The items of one page, in id order, among those that `keep` accepts.
fn page<T: Clone>(
    map: &BTreeMap<ObjectId, T>,
    request: PageRequest,
    keep: impl Fn(&T) -> bool,
) -> Vec<T> {
    let lower = request.after.map_or(Bound::Unbounded, Bound::Excluded);
    map.range((lower, Bound::Unbounded))
        .map(|(_, v)| v)
        .filter(|v| keep(v))
        .take(request.limit)
        .cloned()
        .collect()
}
