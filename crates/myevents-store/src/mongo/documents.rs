//! BSON documents and their conversion to and from domain types.

use crate::Cause;
use chrono::{DateTime, Utc};
use mongodb::bson::{self, oid::ObjectId as BsonId};
use myevents_domain::booking::{Booking, SeatInventory, UserId, WaitlistEntry, WaitlistOffer};
use myevents_domain::event::{Event, EventCancellation};
use myevents_domain::id::ObjectId;
use myevents_domain::location::{Hall, Location};
use myevents_domain::messages::{DomainEvent, OutboxMessage};
use myevents_domain::seats::SeatCount;
use serde::{Deserialize, Serialize};

use crate::{RepositoryError, SeatHold};

pub(crate) fn to_bson_date(time: DateTime<Utc>) -> bson::DateTime {
    to_date(time)
}

pub(crate) fn to_bson_id(id: ObjectId) -> BsonId {
    BsonId::from_bytes(id.bytes())
}

pub(crate) fn from_bson_id(id: BsonId) -> ObjectId {
    ObjectId::from_bytes(id.bytes())
}

fn to_date(time: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(time.timestamp_millis())
}

fn from_date(time: bson::DateTime) -> Result<DateTime<Utc>, RepositoryError> {
    DateTime::from_timestamp_millis(time.timestamp_millis())
        .ok_or_else(|| corrupt("a date out of range"))
}

fn corrupt(what: &str) -> RepositoryError {
    RepositoryError::Unexpected(Cause::msg(format!("stored document has {what}")))
}

fn seats(value: i64) -> Result<SeatCount, RepositoryError> {
    u32::try_from(value)
        .map(SeatCount::new)
        .map_err(|_| corrupt("a seat count out of range"))
}

fn hour(value: i32) -> Result<u8, RepositoryError> {
    u8::try_from(value)
        .ok()
        .filter(|h| *h < 24)
        .ok_or_else(|| corrupt("an hour out of range"))
}

/// A pending outbox message, embedded in the document whose change it announces:
/// `{id, name, payload (the JSON body as text), occurred_at, traceparent?}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxDoc {
    pub(crate) id: String,
    name: String,
    payload: String,
    occurred_at: bson::DateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
}

/// `value` as a BSON value, for an update's `$set` or `$push`.
///
/// # Errors
/// [`RepositoryError::Unexpected`] when it cannot be one (never for the documents here).
pub(crate) fn to_bson_value<T: Serialize>(value: &T) -> Result<bson::Bson, RepositoryError> {
    bson::to_bson(value).map_err(|e| RepositoryError::Unexpected(Cause::new(e)))
}

/// `announce` as an entry of a document's `outbox` array.
///
/// # Errors
/// As [`to_bson_value`].
pub(crate) fn outbox_entry(announce: &OutboxMessage) -> Result<bson::Bson, RepositoryError> {
    to_bson_value(&OutboxDoc::from(announce))
}

impl From<&OutboxMessage> for OutboxDoc {
    fn from(m: &OutboxMessage) -> Self {
        Self {
            id: m.id.clone(),
            name: m.event.name().to_owned(),
            payload: String::from_utf8_lossy(&m.event.to_json()).into_owned(),
            occurred_at: to_date(m.occurred_at),
            traceparent: m.trace_parent.clone(),
        }
    }
}

impl TryFrom<OutboxDoc> for OutboxMessage {
    type Error = RepositoryError;
    fn try_from(d: OutboxDoc) -> Result<Self, RepositoryError> {
        Ok(Self {
            event: DomainEvent::from_json(&d.name, d.payload.as_bytes())
                .map_err(|e| corrupt(&format!("an undecodable outbox message: {e}")))?,
            id: d.id,
            occurred_at: from_date(d.occurred_at)?,
            trace_parent: d.traceparent,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct HallDoc {
    name: String,
    #[serde(default)]
    location: String,
    capacity: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct LocationDoc {
    #[serde(rename = "_id")]
    id: BsonId,
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    opentime: i32,
    #[serde(default)]
    closetime: i32,
    #[serde(default)]
    halls: Vec<HallDoc>,
    /// The user id of the organiser who created it; absent in documents stored before creators
    /// were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organiser: Option<String>,
    /// Changes since creation (absent: none).
    #[serde(default)]
    pub(crate) revision: i64,
    /// When it was deleted: then it is neither read nor listed, and keeps its outbox until the
    /// relay has published it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) deleted_at: Option<bson::DateTime>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) outbox: Vec<OutboxDoc>,
}

impl LocationDoc {
    /// The halls as stored.
    pub(crate) fn halls_of(location: &Location) -> Vec<HallDoc> {
        location
            .halls
            .iter()
            .map(|h| HallDoc {
                name: h.name.clone(),
                location: h.location.clone(),
                capacity: i64::from(h.capacity.get()),
            })
            .collect()
    }
}

impl From<&Location> for LocationDoc {
    fn from(l: &Location) -> Self {
        Self {
            id: to_bson_id(l.id.object_id()),
            name: l.name.clone(),
            address: l.address.clone(),
            country: l.country.clone(),
            opentime: i32::from(l.open_time),
            closetime: i32::from(l.close_time),
            halls: Self::halls_of(l),
            organiser: l.organiser.as_ref().map(|u| u.as_str().to_owned()),
            revision: i64::try_from(l.revision).unwrap_or(i64::MAX),
            deleted_at: None,
            outbox: Vec::new(),
        }
    }
}

impl TryFrom<LocationDoc> for Location {
    type Error = RepositoryError;
    fn try_from(d: LocationDoc) -> Result<Self, RepositoryError> {
        Ok(Self {
            id: from_bson_id(d.id).into(),
            name: d.name,
            address: d.address,
            country: d.country,
            open_time: hour(d.opentime)?,
            close_time: hour(d.closetime)?,
            halls: d
                .halls
                .into_iter()
                .map(|h| {
                    Ok(Hall {
                        name: h.name,
                        location: h.location,
                        capacity: seats(h.capacity)?,
                    })
                })
                .collect::<Result<_, RepositoryError>>()?,
            organiser: organiser(d.organiser)?,
            revision: stored_revision(d.revision)?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct EventDoc {
    #[serde(rename = "_id")]
    id: BsonId,
    name: String,
    duration: i64,
    startdate: bson::DateTime,
    enddate: bson::DateTime,
    location: LocationDoc,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hall: Option<String>,
    capacity: i64,
    /// Seats booked, as announced by `eventBooked` (may dip below zero while messages are out of
    /// order; read clamped).
    #[serde(default)]
    booked: i64,
    /// The organiser's user id; absent in documents stored before organisers were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organiser: Option<String>,
    /// Changes since creation (absent: none).
    #[serde(default)]
    pub(crate) revision: i64,
    /// When it was called off, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cancelled_at: Option<bson::DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cancel_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) outbox: Vec<OutboxDoc>,
}

/// A revision as stored (`int64`), or an error for one that cannot be.
pub(crate) fn revision(value: u64) -> Result<i64, RepositoryError> {
    i64::try_from(value).map_err(|_| RepositoryError::Unexpected(Cause::msg("revision overflow")))
}

/// The cancellation stored as `cancelled_at` and `cancel_reason`, if any.
fn cancellation(
    at: Option<bson::DateTime>,
    reason: Option<String>,
) -> Result<Option<EventCancellation>, RepositoryError> {
    at.map(|at| {
        Ok(EventCancellation {
            at: from_date(at)?,
            reason: reason.unwrap_or_default(),
        })
    })
    .transpose()
}

fn stored_revision(value: i64) -> Result<u64, RepositoryError> {
    u64::try_from(value).map_err(|_| corrupt("a negative revision"))
}

/// The user id of an `organiser` field.
fn organiser(text: Option<String>) -> Result<Option<UserId>, RepositoryError> {
    text.map(|text| UserId::parse(&text).map_err(|_| corrupt("an invalid organiser id")))
        .transpose()
}

impl From<&Event> for EventDoc {
    fn from(e: &Event) -> Self {
        Self {
            id: to_bson_id(e.id.object_id()),
            name: e.name.clone(),
            duration: i64::from(e.duration_minutes),
            startdate: to_date(e.start),
            enddate: to_date(e.end),
            location: LocationDoc::from(&e.location),
            hall: e.hall.clone(),
            capacity: i64::from(e.capacity.get()),
            booked: i64::from(e.seats_booked.get()),
            organiser: e.organiser.as_ref().map(|u| u.as_str().to_owned()),
            revision: i64::try_from(e.revision).unwrap_or(i64::MAX),
            cancelled_at: e.cancelled.as_ref().map(|c| to_date(c.at)),
            cancel_reason: e.cancelled.as_ref().map(|c| c.reason.clone()),
            outbox: Vec::new(),
        }
    }
}

impl TryFrom<EventDoc> for Event {
    type Error = RepositoryError;
    fn try_from(d: EventDoc) -> Result<Self, RepositoryError> {
        Ok(Self {
            id: from_bson_id(d.id).into(),
            name: d.name,
            duration_minutes: u32::try_from(d.duration)
                .map_err(|_| corrupt("a duration out of range"))?,
            start: from_date(d.startdate)?,
            end: from_date(d.enddate)?,
            location: Location::try_from(d.location)?,
            hall: d.hall,
            capacity: seats(d.capacity)?,
            seats_booked: seats(d.booked.clamp(0, i64::from(u32::MAX)))?,
            organiser: organiser(d.organiser)?,
            revision: stored_revision(d.revision)?,
            cancelled: cancellation(d.cancelled_at, d.cancel_reason)?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct InventoryDoc {
    #[serde(rename = "_id")]
    pub(crate) id: BsonId,
    pub(crate) name: String,
    pub(crate) capacity: i64,
    pub(crate) remaining: i64,
    /// The event's organiser's user id, when its announcement named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) organiser: Option<String>,
    /// Reservation records of bookings not stored yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) holds: Vec<HoldDoc>,
    /// Buyers' holds, each with its `expires_at`: apart from the reservation records, so that
    /// claiming one moves it between the arrays in one update (`$pull` and `$push` of one array
    /// cannot be one update).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) buyer_holds: Vec<HoldDoc>,
    /// The event's revision applied last (absent: the one `eventCreated` announced, 0).
    #[serde(default)]
    pub(crate) revision: i64,
    /// When the event was called off, and why (the organiser's reason).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cancelled_at: Option<bson::DateTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cancel_reason: Option<String>,
    /// The event's waitlist, in the order its buyers joined.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) waitlist: Vec<WaitDoc>,
    /// How many of the waitlist's entries wait without an offer (absent: none).
    #[serde(default)]
    pub(crate) waiting: i64,
    /// Set once a cancelled event's bookings are all cancelled and no seat hold is left.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) settled: bool,
}

/// A waitlist entry in an inventory document: `{id, user_id, seats, joined_at, offer?: {hold,
/// expires_at}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WaitDoc {
    pub(crate) id: BsonId,
    pub(crate) user_id: String,
    pub(crate) seats: i64,
    joined_at: bson::DateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) offer: Option<OfferDoc>,
}

/// The offer of a waitlist entry: the hold made for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OfferDoc {
    pub(crate) hold: BsonId,
    pub(crate) expires_at: bson::DateTime,
}

impl From<&WaitlistEntry> for WaitDoc {
    fn from(e: &WaitlistEntry) -> Self {
        Self {
            id: to_bson_id(e.id.object_id()),
            user_id: e.user_id.as_str().to_owned(),
            seats: i64::from(e.seats.get()),
            joined_at: to_date(e.joined_at),
            offer: e.offer.as_ref().map(|o| OfferDoc {
                hold: to_bson_id(o.hold_id.object_id()),
                expires_at: to_date(o.expires_at),
            }),
        }
    }
}

impl WaitDoc {
    /// The entry of event `event_id`, its place `place`.
    fn into_entry(
        self,
        event_id: BsonId,
        place: Option<u32>,
    ) -> Result<WaitlistEntry, RepositoryError> {
        Ok(WaitlistEntry {
            id: from_bson_id(self.id).into(),
            event_id: from_bson_id(event_id).into(),
            user_id: UserId::parse(&self.user_id).map_err(|_| corrupt("an invalid user id"))?,
            seats: seats(self.seats)?,
            joined_at: from_date(self.joined_at)?,
            offer: match self.offer {
                Some(offer) => Some(WaitlistOffer {
                    hold_id: from_bson_id(offer.hold).into(),
                    expires_at: from_date(offer.expires_at)?,
                }),
                None => None,
            },
            place,
        })
    }
}

/// The entries of an inventory's waitlist, each with its place among those still waiting.
pub(crate) fn waitlist_entries(
    event_id: BsonId,
    waitlist: Vec<WaitDoc>,
) -> Result<Vec<WaitlistEntry>, RepositoryError> {
    let entries = waitlist
        .into_iter()
        .map(|entry| entry.into_entry(event_id, None))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(crate::with_places(&entries))
}

/// A seat hold in an inventory document: `{booking, attempt, user_id, seats, booked_at, held_at,
/// expires_at?}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HoldDoc {
    pub(crate) booking: BsonId,
    pub(crate) attempt: String,
    user_id: String,
    seats: i64,
    booked_at: bson::DateTime,
    held_at: bson::DateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<bson::DateTime>,
}

impl HoldDoc {
    /// The hold of `booking` by `attempt`, taken at `held_at`, lapsing at `expires_at` (a buyer's
    /// hold) or never (a reservation record).
    pub(crate) fn new(
        booking: &Booking,
        attempt: &str,
        held_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            booking: to_bson_id(booking.id.object_id()),
            attempt: attempt.to_owned(),
            user_id: booking.user_id.as_str().to_owned(),
            seats: i64::from(booking.seats.get()),
            booked_at: to_date(booking.booked_at),
            held_at: to_date(held_at),
            expires_at: expires_at.map(to_date),
        }
    }

    /// When a buyer's hold lapses.
    pub(crate) fn expires_at(&self) -> Option<bson::DateTime> {
        self.expires_at
    }

    /// When the seats were taken.
    pub(crate) fn held_at(&self) -> bson::DateTime {
        self.held_at
    }

    /// The hold as the port describes it, with the event's `remaining` seats.
    pub(crate) fn into_hold(
        self,
        event_id: BsonId,
        fresh: bool,
        remaining: i64,
    ) -> Result<SeatHold, RepositoryError> {
        Ok(SeatHold {
            booking: Booking {
                id: from_bson_id(self.booking).into(),
                event_id: from_bson_id(event_id).into(),
                user_id: UserId::parse(&self.user_id).map_err(|_| corrupt("an invalid user id"))?,
                seats: seats(self.seats)?,
                booked_at: from_date(self.booked_at)?,
                cancelled_at: None,
                cancel_reason: None,
            },
            attempt: self.attempt,
            held_at: from_date(self.held_at)?,
            fresh,
            remaining: seats(remaining)?,
            expires_at: self.expires_at.map(from_date).transpose()?,
        })
    }
}

impl TryFrom<InventoryDoc> for SeatInventory {
    type Error = RepositoryError;
    fn try_from(d: InventoryDoc) -> Result<Self, RepositoryError> {
        Ok(Self {
            event_id: from_bson_id(d.id).into(),
            event_name: d.name,
            capacity: seats(d.capacity)?,
            remaining: seats(d.remaining)?,
            organiser: organiser(d.organiser)?,
            revision: stored_revision(d.revision)?,
            cancelled: cancellation(d.cancelled_at, d.cancel_reason)?,
        })
    }
}

#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct BookingDoc {
    #[serde(rename = "_id")]
    id: BsonId,
    event_id: BsonId,
    user_id: String,
    seats: i64,
    booked_at: bson::DateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cancelled_at: Option<bson::DateTime>,
    /// Why it was cancelled, when its buyer did not cancel it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cancel_reason: Option<String>,
    /// Set while a cancellation's seats are being given back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) returning: bool,
    /// The attempt whose seat hold the booking was stored under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) hold: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) outbox: Vec<OutboxDoc>,
}

impl From<&Booking> for BookingDoc {
    fn from(b: &Booking) -> Self {
        Self {
            id: to_bson_id(b.id.object_id()),
            event_id: to_bson_id(b.event_id.object_id()),
            user_id: b.user_id.as_str().to_owned(),
            seats: i64::from(b.seats.get()),
            booked_at: to_date(b.booked_at),
            cancelled_at: b.cancelled_at.map(to_date),
            cancel_reason: b.cancel_reason.clone(),
            returning: false,
            hold: None,
            outbox: Vec::new(),
        }
    }
}

impl TryFrom<BookingDoc> for Booking {
    type Error = RepositoryError;
    fn try_from(d: BookingDoc) -> Result<Self, RepositoryError> {
        Ok(Self {
            id: from_bson_id(d.id).into(),
            event_id: from_bson_id(d.event_id).into(),
            user_id: UserId::parse(&d.user_id).map_err(|_| corrupt("an invalid user id"))?,
            seats: seats(d.seats)?,
            booked_at: from_date(d.booked_at)?,
            cancelled_at: d.cancelled_at.map(from_date).transpose()?,
            cancel_reason: d.cancel_reason,
        })
    }
}
