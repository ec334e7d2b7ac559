//! The booking service's business metrics (Prometheus, default registry; names as the reference's),
//! as [`BookingMetrics`], handed to the use cases that count.
//!
//! - `myevents_bookings_count`: bookings placed (counter);
//! - `myevents_seats_per_booking`: seats per placed booking (histogram, buckets 1, 2, 3, 4, 5, 10);
//! - `myevents_sold_out_rejections_total`: bookings refused with 409 because too few seats remained;
//! - `myevents_reconciled_seat_holds_total`: interrupted bookings the reconciler finished from their
//!   seat holds (counter; anything above zero means requests died between their two writes);
//! - `myevents_holds_total`: buyers' holds taken (counter);
//! - `myevents_lapsed_holds_total`: buyers' holds that lapsed unconfirmed, their seats given back;
//! - `myevents_waitlist_offers_total`: seats offered to waiting buyers (holds in their name).

use std::sync::LazyLock;

use myevents_platform::metrics::registered;
use prometheus::{Histogram, IntCounter, register_histogram, register_int_counter};

/// The booking service's series. Cheap to clone: every clone counts in the same series.
#[derive(Debug, Clone)]
pub struct BookingMetrics {
    /// Bookings placed.
    pub bookings: IntCounter,
    /// Seats per placed booking.
    pub seats_per_booking: Histogram,
    /// Bookings refused because too few seats remained.
    pub sold_out: IntCounter,
    /// Interrupted bookings finished by the reconciler.
    pub reconciled_holds: IntCounter,
    /// Buyers' holds taken.
    pub holds: IntCounter,
    /// Buyers' holds that lapsed unconfirmed.
    pub lapsed_holds: IntCounter,
    /// Offers made to waiting buyers.
    pub waitlist_offers: IntCounter,
}

impl BookingMetrics {
    /// The process's series: registered in the default registry by the first call (so that they
    /// are listed, at zero, before the first booking) and shared by every later one, since the
    /// registry takes each name once.
    pub fn registered() -> Self {
        static METRICS: LazyLock<BookingMetrics> = LazyLock::new(|| BookingMetrics {
            bookings: registered(
                "myevents_bookings_count",
                register_int_counter!("myevents_bookings_count", "Bookings placed."),
            ),
            seats_per_booking: registered(
                "myevents_seats_per_booking",
                register_histogram!(
                    "myevents_seats_per_booking",
                    "Seats per placed booking.",
                    vec![1.0, 2.0, 3.0, 4.0, 5.0, 10.0]
                ),
            ),
            sold_out: registered(
                "myevents_sold_out_rejections_total",
                register_int_counter!(
                    "myevents_sold_out_rejections_total",
                    "Bookings refused (409) because fewer seats remained than requested."
                ),
            ),
            reconciled_holds: registered(
                "myevents_reconciled_seat_holds_total",
                register_int_counter!(
                    "myevents_reconciled_seat_holds_total",
                    "Interrupted bookings the reconciler finished from their seat holds."
                ),
            ),
            holds: registered(
                "myevents_holds_total",
                register_int_counter!("myevents_holds_total", "Buyers' holds taken."),
            ),
            lapsed_holds: registered(
                "myevents_lapsed_holds_total",
                register_int_counter!(
                    "myevents_lapsed_holds_total",
                    "Buyers' holds that lapsed unconfirmed; their seats went back on sale."
                ),
            ),
            waitlist_offers: registered(
                "myevents_waitlist_offers_total",
                register_int_counter!(
                    "myevents_waitlist_offers_total",
                    "Seats offered to waiting buyers, each a hold in their name."
                ),
            ),
        });
        METRICS.clone()
    }
}
