//! The booking service's business metrics (Prometheus, default registry; names as the reference's).
//!
//! - `myevents_bookings_count`: bookings placed (counter);
//! - `myevents_seats_per_booking`: seats per placed booking (histogram, buckets 1, 2, 3, 4, 5, 10);
//! - `myevents_sold_out_rejections_total`: bookings refused with 409 because too few seats remained;
//! - `myevents_reconciled_seat_holds_total`: interrupted bookings the reconciler finished from their
//!   seat holds (counter; anything above zero means requests died between their two writes).

use std::sync::LazyLock;

use prometheus::{Histogram, IntCounter, register_histogram, register_int_counter};

/// Bookings placed.
pub static BOOKINGS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!("myevents_bookings_count", "Bookings placed.")
        .unwrap_or_else(|e| panic!("registering myevents_bookings_count: {e}"))
});

/// Seats per placed booking.
pub static SEATS_PER_BOOKING: LazyLock<Histogram> = LazyLock::new(|| {
    register_histogram!(
        "myevents_seats_per_booking",
        "Seats per placed booking.",
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 10.0]
    )
    .unwrap_or_else(|e| panic!("registering myevents_seats_per_booking: {e}"))
});

/// Bookings refused because too few seats remained.
pub static SOLD_OUT: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "myevents_sold_out_rejections_total",
        "Bookings refused (409) because fewer seats remained than requested."
    )
    .unwrap_or_else(|e| panic!("registering myevents_sold_out_rejections_total: {e}"))
});

/// Interrupted bookings finished by the reconciler.
pub static RECONCILED_HOLDS: LazyLock<IntCounter> = LazyLock::new(|| {
    register_int_counter!(
        "myevents_reconciled_seat_holds_total",
        "Interrupted bookings the reconciler finished from their seat holds."
    )
    .unwrap_or_else(|e| panic!("registering myevents_reconciled_seat_holds_total: {e}"))
});

/// Registers the series, so that they are listed (at zero) before the first booking.
pub fn register() {
    LazyLock::force(&BOOKINGS);
    LazyLock::force(&SEATS_PER_BOOKING);
    LazyLock::force(&SOLD_OUT);
    LazyLock::force(&RECONCILED_HOLDS);
}
