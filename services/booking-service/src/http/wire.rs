//! The booking wire format: `{ID, EventID, UserID, Seats, Date[, CancelledAt[, CancelReason]]}` — the
//! reference's keys, with `EventID` as the 24-hex id (the reference sent base64 of the hex text, a
//! bug), `Date` in Unix seconds, `CancelledAt` (Unix seconds) added once a booking is cancelled and
//! `CancelReason` when its buyer did not cancel it (its event was called off).

use myevents_domain::booking::{Booking, UserId, WaitlistEntry};
use myevents_domain::id::{BookingId, EventId, ObjectId};
use myevents_domain::seats::SeatCount;
use myevents_http::openapi::ResponseExample;
use myevents_store::SeatHold;
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
    /// Why it was cancelled, when its buyer did not cancel it: `the event was cancelled`, and the
    /// organiser's reason after `: ` when one was given. Absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(
        nullable = false,
        example = "the event was cancelled: the soloist is ill"
    )]
    pub cancel_reason: Option<String>,
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
            cancel_reason: b.cancel_reason.clone(),
        }
    }
}

/// A buyer's hold on the wire: `{ID, EventID, UserID, Seats, HeldAt, ExpiresAt}` (Unix seconds).
/// Its `ID` is the id of the booking it becomes once confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = Hold)]
pub struct HoldBody {
    /// 24-hex id: also the id of the booking it becomes.
    #[serde(rename = "ID")]
    #[schema(value_type = myevents_http::openapi::Id)]
    pub id: String,
    /// The event, 24-hex id.
    #[serde(rename = "EventID")]
    #[schema(value_type = myevents_http::openapi::Id)]
    pub event_id: String,
    /// Who holds.
    #[serde(rename = "UserID")]
    #[schema(example = "someUserID")]
    pub user_id: String,
    /// Seats held.
    #[schema(minimum = 1, example = 2)]
    pub seats: u32,
    /// When the seats were taken, Unix seconds.
    #[schema(example = 1_768_000_000)]
    pub held_at: i64,
    /// When the hold lapses unless confirmed, Unix seconds (`HOLD_TTL` after it was taken); its
    /// seats are back on sale within `HOLD_SWEEP_INTERVAL` after that.
    #[schema(example = 1_768_000_600)]
    pub expires_at: i64,
}

impl From<&SeatHold> for HoldBody {
    fn from(h: &SeatHold) -> Self {
        Self {
            id: h.booking.id.to_string(),
            event_id: h.booking.event_id.to_string(),
            user_id: h.booking.user_id.to_string(),
            seats: h.booking.seats.get(),
            held_at: h.held_at.timestamp(),
            expires_at: h
                .expires_at
                .map_or(h.held_at.timestamp(), |at| at.timestamp()),
        }
    }
}

/// A waitlist entry on the wire: `{ID, EventID, UserID, Seats, JoinedAt, Place?, Offer?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = WaitlistEntry)]
pub struct WaitlistEntryBody {
    /// 24-hex id.
    #[serde(rename = "ID")]
    #[schema(value_type = myevents_http::openapi::Id)]
    pub id: String,
    /// The event waited for, 24-hex id.
    #[serde(rename = "EventID")]
    #[schema(value_type = myevents_http::openapi::Id)]
    pub event_id: String,
    /// Who waits.
    #[serde(rename = "UserID")]
    #[schema(example = "someUserID")]
    pub user_id: String,
    /// Seats wanted: offered all together or not at all.
    #[schema(minimum = 1, example = 2)]
    pub seats: u32,
    /// When the buyer joined, Unix seconds.
    #[schema(example = 1_768_000_000)]
    pub joined_at: i64,
    /// The place among the buyers still waiting (1: the next offer is this one's); absent once
    /// seats were offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1, example = 3)]
    pub place: Option<u32>,
    /// The seats offered: a hold in the buyer's name, to confirm before it lapses.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub offer: Option<OfferBody>,
}

/// Seats offered to a waiting buyer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = WaitlistOffer)]
pub struct OfferBody {
    /// The hold (`/holds/{id}`; confirm it at `/holds/{id}/confirmation`).
    #[serde(rename = "HoldID")]
    #[schema(value_type = myevents_http::openapi::Id)]
    pub hold_id: String,
    /// When the hold lapses unless confirmed, Unix seconds.
    #[schema(example = 1_768_000_600)]
    pub expires_at: i64,
}

impl From<&WaitlistEntry> for WaitlistEntryBody {
    fn from(e: &WaitlistEntry) -> Self {
        Self {
            id: e.id.to_string(),
            event_id: e.event_id.to_string(),
            user_id: e.user_id.to_string(),
            seats: e.seats.get(),
            joined_at: e.joined_at.timestamp(),
            place: e.place,
            offer: e.offer.as_ref().map(|o| OfferBody {
                hold_id: o.hold_id.to_string(),
                expires_at: o.expires_at.timestamp(),
            }),
        }
    }
}

/// The document's response examples: a booking of 2 seats and the same booking cancelled, as the
/// handlers answer them — the same conversion, the same serialiser — with fixed ids and times.
pub fn response_examples() -> Vec<ResponseExample> {
    let at = |seconds| chrono::DateTime::from_timestamp(seconds, 0).unwrap_or_default();
    let booking = Booking {
        id: BookingId::from(ObjectId::from_bytes([
            0x6b, 0x02, 0x6a, 0xc1, 0x3f, 0x9e, 0x51, 0xd2, 0x07, 0x8c, 0xa4, 0x1b,
        ])),
        event_id: EventId::from(ObjectId::from_bytes([
            0x6b, 0x02, 0x6a, 0xb2, 0x68, 0x6c, 0x82, 0x2a, 0x56, 0xb0, 0xfe, 0x36,
        ])),
        user_id: UserId::parse("someUserID").unwrap_or_else(|_| UserId::anonymous()),
        seats: SeatCount::new(2),
        booked_at: at(1_768_000_000),
        cancelled_at: None,
        cancel_reason: None,
    };
    let cancelled = Booking {
        cancelled_at: Some(at(1_768_003_600)),
        ..booking.clone()
    };
    let hold = HoldBody::from(&SeatHold {
        booking: booking.clone(),
        attempt: String::new(),
        held_at: at(1_768_000_000),
        fresh: true,
        remaining: SeatCount::new(98),
        expires_at: Some(at(1_768_000_600)),
    });
    let entry = WaitlistEntry {
        id: myevents_domain::id::WaitlistEntryId::from(ObjectId::from_bytes([
            0x6b, 0x02, 0x6a, 0xd0, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
        ])),
        event_id: booking.event_id,
        user_id: booking.user_id.clone(),
        seats: SeatCount::new(2),
        joined_at: at(1_768_000_000),
        offer: None,
        place: Some(3),
    };
    let entry = WaitlistEntryBody::from(&entry);
    let booking = BookingBody::from(&booking);
    vec![
        ResponseExample::new("joinWaitlist", "201", &entry),
        ResponseExample::new("getWaitlistEntry", "200", &entry),
        ResponseExample::new("listUserWaitlist", "200", &[&entry]),
        ResponseExample::new("holdSeats", "201", &hold),
        ResponseExample::new("getHold", "200", &hold),
        ResponseExample::new("confirmHold", "201", &booking),
        ResponseExample::new("bookSeats", "201", &booking),
        ResponseExample::new("getBooking", "200", &booking),
        ResponseExample::new("listEventBookings", "200", &[&booking]),
        ResponseExample::new("listUserBookings", "200", &[&booking]),
        ResponseExample::new("cancelBooking", "200", &BookingBody::from(&cancelled)),
    ]
}

/// A booking request, `{"seats": n}` (keys matched case-insensitively).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct BookingInput {
    /// Seats requested: at least 1, at most `MAX_SEATS_PER_BOOKING` (10 by default).
    #[schema(value_type = u32, required = true, minimum = 1, maximum = 10, example = 2)]
    pub seats: Option<i64>,
}
