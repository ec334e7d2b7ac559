//! The booking wire format: `{ID, EventID, UserID, Seats, Date[, CancelledAt]}` — the reference's keys,
//! with `EventID` as the 24-hex id (the reference sent base64 of the hex text, a bug), `Date` in Unix
//! seconds, and `CancelledAt` (Unix seconds) added once a booking is cancelled.

use myevents_domain::booking::Booking;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A booking on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = Booking)]
pub struct BookingBody {
    /// 24-hex id (random).
    #[serde(rename = "ID")]
    #[schema(value_type = myevents_http::openapi::Id)]
    pub id: String,
    /// The booked event, 24-hex id.
    #[serde(rename = "EventID")]
    #[schema(value_type = myevents_http::openapi::Id)]
    pub event_id: String,
    /// Who booked: the token's `sub` (or `X-User-Id` with authentication off).
    #[serde(rename = "UserID")]
    #[schema(example = "someUserID")]
    pub user_id: String,
    /// Seats booked.
    #[schema(minimum = 1, example = 2)]
    pub seats: u32,
    /// When, Unix seconds.
    #[schema(example = 1_768_000_000)]
    pub date: i64,
    /// When it was cancelled, Unix seconds; absent while it stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = 1_768_003_600)]
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
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct BookingInput {
    /// Seats requested: at least 1, at most `MAX_SEATS_PER_BOOKING` (10 by default).
    #[schema(value_type = u32, required = true, minimum = 1, maximum = 10, example = 2)]
    pub seats: Option<i64>,
}
