//! The booking wire format: `{ID, EventID, UserID, Seats, Date[, CancelledAt]}` — the reference's keys,
//! with `EventID` as the 24-hex id (the reference sent base64 of the hex text, a bug), `Date` in Unix
//! seconds, and `CancelledAt` (Unix seconds) added once a booking is cancelled.

use myevents_domain::booking::Booking;
use serde::{Deserialize, Serialize};

/// A booking on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BookingBody {
    /// 24-hex id.
    #[serde(rename = "ID")]
    pub id: String,
    /// The booked event, 24-hex id.
    #[serde(rename = "EventID")]
    pub event_id: String,
    /// Who booked.
    #[serde(rename = "UserID")]
    pub user_id: String,
    /// Seats booked.
    pub seats: u32,
    /// When, Unix seconds.
    pub date: i64,
    /// When it was cancelled, Unix seconds; absent while it stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_at: Option<i64>,
}

impl From<&Booking> for BookingBody {
    fn from(b: &Booking) -> Self {
        Self {
            id: b.id.to_string(),
            event_id: b.event_id.to_string(),
            user_id: b.user_id.to_string(),
            seats: b.seats.get(),
            date: b.booked_at.timestamp(),
            cancelled_at: b.cancelled_at.map(|t| t.timestamp()),
        }
    }
}

/// A booking request, `{"seats": n}` (keys matched case-insensitively).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BookingInput {
    /// Seats requested.
    pub seats: Option<i64>,
}
