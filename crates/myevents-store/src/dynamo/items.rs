//! The items of the DynamoDB tables and their conversion to and from domain types. Times are
//! numbers of milliseconds since the Unix epoch, ids their 24 hex digits, seats numbers.

use chrono::{DateTime, Utc};
use myevents_domain::booking::{Booking, SeatInventory, UserId, WaitlistEntry, WaitlistOffer};
use myevents_domain::event::{Event, EventCancellation};
use myevents_domain::id::{BookingId, EventId, LocationId, WaitlistEntryId};
use myevents_domain::location::{Hall, Location};
use myevents_domain::messages::{DomainEvent, OutboxMessage};
use myevents_domain::seats::SeatCount;
use serde::{Deserialize, Serialize};

use crate::{Cause, RepositoryError, SeatHold};

/// Milliseconds since the Unix epoch.
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// The time of `millis`.
pub(crate) fn time(millis: i64) -> Result<DateTime<Utc>, RepositoryError> {
    DateTime::from_timestamp_millis(millis).ok_or_else(|| corrupt("a time out of range"))
}

pub(crate) fn corrupt(what: &str) -> RepositoryError {
    RepositoryError::Unexpected(Cause::msg(format!("stored item has {what}")))
}

fn seats(value: i64) -> Result<SeatCount, RepositoryError> {
    u32::try_from(value)
        .map(SeatCount::new)
        .map_err(|_| corrupt("a seat count out of range"))
}

fn user(text: &str) -> Result<UserId, RepositoryError> {
    UserId::parse(text).map_err(|_| corrupt("an invalid user id"))
}

fn organiser(text: Option<&str>) -> Result<Option<UserId>, RepositoryError> {
    text.map(user).transpose()
}

fn id<T: std::str::FromStr>(text: &str) -> Result<T, RepositoryError> {
    text.parse().map_err(|_| corrupt("an invalid id"))
}

/// An event's cancellation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CancellationItem {
    pub(crate) at: i64,
    #[serde(default)]
    pub(crate) reason: String,
}

impl From<&EventCancellation> for CancellationItem {
    fn from(c: &EventCancellation) -> Self {
        Self {
            at: millis(c.at),
            reason: c.reason.clone(),
        }
    }
}

impl CancellationItem {
    pub(crate) fn into_domain(self) -> Result<EventCancellation, RepositoryError> {
        Ok(EventCancellation {
            at: time(self.at)?,
            reason: self.reason,
        })
    }
}

/// A hall of a location.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HallItem {
    name: String,
    #[serde(default)]
    location: String,
    capacity: i64,
}

/// A location's fields (in its own item, and copied into each event's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LocationFields {
    pub(crate) id: String,
    name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    country: String,
    open_time: i64,
    close_time: i64,
    #[serde(default)]
    halls: Vec<HallItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organiser: Option<String>,
    #[serde(default)]
    pub(crate) revision: u64,
}

impl From<&Location> for LocationFields {
    fn from(l: &Location) -> Self {
        Self {
            id: l.id.to_string(),
            name: l.name.clone(),
            address: l.address.clone(),
            country: l.country.clone(),
            open_time: i64::from(l.open_time),
            close_time: i64::from(l.close_time),
            halls: l
                .halls
                .iter()
                .map(|h| HallItem {
                    name: h.name.clone(),
                    location: h.location.clone(),
                    capacity: i64::from(h.capacity.get()),
                })
                .collect(),
            organiser: l.organiser.as_ref().map(|u| u.as_str().to_owned()),
            revision: l.revision,
        }
    }
}

impl LocationFields {
    pub(crate) fn into_domain(self) -> Result<Location, RepositoryError> {
        let hour = |h: i64| {
            u8::try_from(h)
                .ok()
                .filter(|h| *h < 24)
                .ok_or_else(|| corrupt("an hour out of range"))
        };
        Ok(Location {
            id: id::<LocationId>(&self.id)?,
            name: self.name,
            address: self.address,
            country: self.country,
            open_time: hour(self.open_time)?,
            close_time: hour(self.close_time)?,
            halls: self
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
            organiser: organiser(self.organiser.as_deref())?,
            revision: self.revision,
        })
    }
}

/// An event's fields, as its item holds them (`booked` may run below zero or above capacity while
/// messages arrive out of order; it is clamped when read).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventFields {
    pub(crate) id: String,
    pub(crate) name: String,
    duration_minutes: i64,
    start: i64,
    pub(crate) end: i64,
    pub(crate) location: LocationFields,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hall: Option<String>,
    capacity: i64,
    #[serde(default)]
    booked: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    organiser: Option<String>,
    #[serde(default)]
    pub(crate) revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cancelled: Option<CancellationItem>,
}

impl From<&Event> for EventFields {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id.to_string(),
            name: e.name.clone(),
            duration_minutes: i64::from(e.duration_minutes),
            start: millis(e.start),
            end: millis(e.end),
            location: LocationFields::from(&e.location),
            hall: e.hall.clone(),
            capacity: i64::from(e.capacity.get()),
            booked: i64::from(e.seats_booked.get()),
            organiser: e.organiser.as_ref().map(|u| u.as_str().to_owned()),
            revision: e.revision,
            cancelled: e.cancelled.as_ref().map(CancellationItem::from),
        }
    }
}

impl EventFields {
    pub(crate) fn into_domain(self) -> Result<Event, RepositoryError> {
        Ok(Event {
            id: id::<EventId>(&self.id)?,
            name: self.name,
            duration_minutes: u32::try_from(self.duration_minutes)
                .map_err(|_| corrupt("a duration out of range"))?,
            start: time(self.start)?,
            end: time(self.end)?,
            location: self.location.into_domain()?,
            hall: self.hall,
            capacity: seats(self.capacity)?,
            seats_booked: seats(self.booked.clamp(0, i64::from(u32::MAX)))?,
            organiser: organiser(self.organiser.as_deref())?,
            revision: self.revision,
            cancelled: self
                .cancelled
                .map(CancellationItem::into_domain)
                .transpose()?,
        })
    }
}

/// A booking's fields (in its own item, and in the seat hold it is stored from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct BookingFields {
    pub(crate) id: String,
    pub(crate) event_id: String,
    pub(crate) user_id: String,
    pub(crate) seats: i64,
    booked_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cancelled_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cancel_reason: Option<String>,
}

impl From<&Booking> for BookingFields {
    fn from(b: &Booking) -> Self {
        Self {
            id: b.id.to_string(),
            event_id: b.event_id.to_string(),
            user_id: b.user_id.as_str().to_owned(),
            seats: i64::from(b.seats.get()),
            booked_at: millis(b.booked_at),
            cancelled_at: b.cancelled_at.map(millis),
            cancel_reason: b.cancel_reason.clone(),
        }
    }
}

impl BookingFields {
    pub(crate) fn into_domain(self) -> Result<Booking, RepositoryError> {
        Ok(Booking {
            id: id::<BookingId>(&self.id)?,
            event_id: id::<EventId>(&self.event_id)?,
            user_id: user(&self.user_id)?,
            seats: seats(self.seats)?,
            booked_at: time(self.booked_at)?,
            cancelled_at: self.cancelled_at.map(time).transpose()?,
            cancel_reason: self.cancel_reason,
        })
    }
}

/// A stored booking: `booking#<id>`, in `gsi1` under `event#<event id>` and in `gsi2` under
/// `user#<user id>`, with the attempt whose seat hold it was stored from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct BookingItem {
    pub(crate) pk: String,
    #[serde(flatten)]
    pub(crate) booking: BookingFields,
    pub(crate) attempt: String,
    g1pk: String,
    g1sk: String,
    g2pk: String,
    g2sk: String,
}

impl BookingItem {
    pub(crate) fn new(booking: &Booking, attempt: &str) -> Self {
        let fields = BookingFields::from(booking);
        Self {
            pk: booking_key(booking.id),
            g1pk: format!("event#{}", fields.event_id),
            g1sk: fields.id.clone(),
            g2pk: format!("user#{}", fields.user_id),
            g2sk: fields.id.clone(),
            booking: fields,
            attempt: attempt.to_owned(),
        }
    }
}

/// The key of booking `id`.
pub(crate) fn booking_key(id: BookingId) -> String {
    format!("booking#{id}")
}

/// The key of the inventory of event `id`.
pub(crate) fn inventory_key(id: EventId) -> String {
    format!("inventory#{id}")
}

/// The key of the seat hold of booking `id`.
pub(crate) fn hold_key(id: BookingId) -> String {
    format!("hold#{id}")
}

/// The key of the pointer item of waitlist entry `id`.
pub(crate) fn waitlist_key(id: WaitlistEntryId) -> String {
    format!("waitlist#{id}")
}

/// A seat hold's fields (its item, flattened: `booking`, `attempt`, `held_at`, `expires_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct HoldFields {
    pub(crate) booking: BookingFields,
    pub(crate) attempt: String,
    pub(crate) held_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<i64>,
}

impl HoldFields {
    pub(crate) fn new(
        booking: &Booking,
        attempt: &str,
        held_at: DateTime<Utc>,
        expires_at: Option<DateTime<Utc>>,
    ) -> Self {
        Self {
            booking: BookingFields::from(booking),
            attempt: attempt.to_owned(),
            held_at: millis(held_at),
            expires_at: expires_at.map(millis),
        }
    }

    pub(crate) fn into_hold(
        self,
        remaining: SeatCount,
        fresh: bool,
    ) -> Result<SeatHold, RepositoryError> {
        Ok(SeatHold {
            booking: self.booking.into_domain()?,
            attempt: self.attempt,
            held_at: time(self.held_at)?,
            fresh,
            remaining,
            expires_at: self.expires_at.map(time).transpose()?,
        })
    }
}

/// A seat hold: `hold#<booking id>`, in `gsi1` under `reservations` (by time held) or `buyer-holds`
/// (by time it lapses), and in `gsi2` under `holds#<event id>` (an event's holds, by booking id). Its
/// seats are counted out of its event's `remaining` by the write that stores it; its own item keeps
/// the inventory item small, so that each booking's writes to the inventory cost the same however
/// many holds the event has.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HoldItem {
    pub(crate) pk: String,
    pub(crate) event_id: String,
    #[serde(flatten)]
    pub(crate) hold: HoldFields,
    pub(crate) g1pk: String,
    pub(crate) g1sk: String,
    pub(crate) g2pk: String,
    pub(crate) g2sk: String,
}

impl HoldItem {
    /// The item of `hold`, filed by its kind.
    pub(crate) fn of(hold: HoldFields) -> Self {
        let (g1pk, at) = match hold.expires_at {
            None => (RESERVATIONS, hold.held_at),
            Some(expires) => (BUYER_HOLDS, expires),
        };
        Self {
            pk: format!("hold#{}", hold.booking.id),
            event_id: hold.booking.event_id.clone(),
            g1pk: g1pk.to_owned(),
            g1sk: format!("{:015}#{}", at.max(0), hold.booking.id),
            g2pk: format!("holds#{}", hold.booking.event_id),
            g2sk: hold.booking.id.clone(),
            hold,
        }
    }
}

/// `gsi1` partition of the reservation records, by time held.
pub(crate) const RESERVATIONS: &str = "reservations";
/// `gsi1` partition of the buyers' holds, by time they lapse.
pub(crate) const BUYER_HOLDS: &str = "buyer-holds";
/// `gsi1` partition of the cancelled events not settled yet.
pub(crate) const UNSETTLED: &str = "unsettled";
/// `gsi2` partition of the events with a waitlist.
pub(crate) const WAITLISTS: &str = "waitlists";

/// A waitlist entry as its inventory item holds it (`waitlist`, in the order the buyers joined).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct WaitlistFields {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) seats: i64,
    pub(crate) joined_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) offer_hold: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) offer_expires_at: Option<i64>,
}

impl From<&WaitlistEntry> for WaitlistFields {
    fn from(e: &WaitlistEntry) -> Self {
        Self {
            id: e.id.to_string(),
            user_id: e.user_id.as_str().to_owned(),
            seats: i64::from(e.seats.get()),
            joined_at: millis(e.joined_at),
            offer_hold: e.offer.as_ref().map(|o| o.hold_id.to_string()),
            offer_expires_at: e.offer.as_ref().map(|o| millis(o.expires_at)),
        }
    }
}

impl WaitlistFields {
    pub(crate) fn into_entry(self, event_id: EventId) -> Result<WaitlistEntry, RepositoryError> {
        let offer = match (self.offer_hold, self.offer_expires_at) {
            (Some(hold), Some(expires)) => Some(WaitlistOffer {
                hold_id: id::<BookingId>(&hold)?,
                expires_at: time(expires)?,
            }),
            _ => None,
        };
        Ok(WaitlistEntry {
            id: id::<WaitlistEntryId>(&self.id)?,
            event_id,
            user_id: user(&self.user_id)?,
            seats: seats(self.seats)?,
            joined_at: time(self.joined_at)?,
            offer,
            place: None,
        })
    }
}

/// The pointer item of a waitlist entry: `waitlist#<entry id>`, naming its event, in `gsi2` under
/// `waiting#<user id>` by the time it joined.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct WaitlistPointer {
    pub(crate) pk: String,
    pub(crate) event_id: String,
    pub(crate) g2pk: String,
    pub(crate) g2sk: String,
}

impl WaitlistPointer {
    pub(crate) fn of(entry: &WaitlistEntry) -> Self {
        Self {
            pk: waitlist_key(entry.id),
            event_id: entry.event_id.to_string(),
            g2pk: format!("waiting#{}", entry.user_id.as_str()),
            g2sk: super::time_key(entry.joined_at, &entry.id.to_string()),
        }
    }
}

/// The booking service's copy of an event, with its waitlist in the same item
/// (`inventory#<event id>`), so that the seats on sale and waited for change together; its seat holds
/// are items of their own ([`HoldItem`]), counted here: `remaining` is what no booking or hold took,
/// `reserved` how many reservation records (holds of bookings being stored) the event has.
///
/// `remaining`, `waiting` (entries without an offer), `reserved` and `cancelled` are what the
/// conditional updates of the hot path test and change; `version` goes up with every write, and
/// the writes that read first are conditional on it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InventoryItem {
    pub(crate) pk: String,
    pub(crate) event_id: String,
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) capacity: i64,
    pub(crate) remaining: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) organiser: Option<String>,
    #[serde(default)]
    pub(crate) revision: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cancelled: Option<CancellationItem>,
    #[serde(default)]
    pub(crate) settled: bool,
    #[serde(default)]
    pub(crate) reserved: i64,
    #[serde(default)]
    pub(crate) waitlist: Vec<WaitlistFields>,
    #[serde(default)]
    pub(crate) waiting: i64,
    #[serde(default)]
    pub(crate) version: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) g1pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) g1sk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) g2pk: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) g2sk: Option<String>,
}

impl InventoryItem {
    /// A new item for `inventory`, without holds or waitlist.
    pub(crate) fn new(inventory: &SeatInventory) -> Self {
        let mut item = Self {
            pk: inventory_key(inventory.event_id),
            event_id: inventory.event_id.to_string(),
            name: String::new(),
            capacity: 0,
            remaining: 0,
            organiser: None,
            revision: 0,
            cancelled: None,
            settled: false,
            reserved: 0,
            waitlist: Vec::new(),
            waiting: 0,
            version: 0,
            g1pk: None,
            g1sk: None,
            g2pk: None,
            g2sk: None,
        };
        item.set_inventory(inventory);
        item
    }

    /// Sets the fields of `inventory` and the listings they put the item in.
    pub(crate) fn set_inventory(&mut self, inventory: &SeatInventory) {
        self.name.clone_from(&inventory.event_name);
        self.capacity = i64::from(inventory.capacity.get());
        self.remaining = i64::from(inventory.remaining.get());
        self.organiser = inventory.organiser.as_ref().map(|u| u.as_str().to_owned());
        self.revision = inventory.revision;
        self.cancelled = inventory.cancelled.as_ref().map(CancellationItem::from);
        self.file();
    }

    /// Files the item in the listings its state puts it in: `unsettled` while cancelled and not
    /// settled, `waitlists` while its waitlist has entries.
    pub(crate) fn file(&mut self) {
        let unsettled = self.cancelled.is_some() && !self.settled;
        self.g1pk = unsettled.then(|| UNSETTLED.to_owned());
        self.g1sk = unsettled.then(|| self.event_id.clone());
        let listed = !self.waitlist.is_empty();
        self.g2pk = listed.then(|| WAITLISTS.to_owned());
        self.g2sk = listed.then(|| self.event_id.clone());
        self.waiting = i64::try_from(
            self.waitlist
                .iter()
                .filter(|e| e.offer_hold.is_none())
                .count(),
        )
        .unwrap_or(i64::MAX);
    }

    /// The inventory it holds.
    pub(crate) fn inventory(&self) -> Result<SeatInventory, RepositoryError> {
        Ok(SeatInventory {
            event_id: id::<EventId>(&self.event_id)?,
            event_name: self.name.clone(),
            capacity: seats(self.capacity)?,
            remaining: seats(self.remaining.max(0))?,
            organiser: organiser(self.organiser.as_deref())?,
            revision: self.revision,
            cancelled: self
                .cancelled
                .clone()
                .map(CancellationItem::into_domain)
                .transpose()?,
        })
    }

    /// The seats that remain.
    pub(crate) fn remaining(&self) -> SeatCount {
        SeatCount::new(u32::try_from(self.remaining.max(0)).unwrap_or(u32::MAX))
    }

    /// Its waitlist, each entry with its place.
    pub(crate) fn entries(&self) -> Result<Vec<WaitlistEntry>, RepositoryError> {
        let event_id = id::<EventId>(&self.event_id)?;
        let list = self
            .waitlist
            .iter()
            .cloned()
            .map(|e| e.into_entry(event_id))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(crate::with_places(&list))
    }
}

/// A pending outbox message: `outbox#<message id>`, in `gsi1` under `outbox` by message id (a UUID
/// v7, so in the order the messages were made); `name` and `payload` (the JSON body as text) as the
/// broker carries them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutboxItem {
    pub(crate) pk: String,
    pub(crate) id: String,
    name: String,
    payload: String,
    pub(crate) occurred_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    traceparent: Option<String>,
    g1pk: String,
    g1sk: String,
}

/// `gsi1` partition of the pending outbox messages.
pub(crate) const OUTBOX: &str = "outbox";

impl From<&OutboxMessage> for OutboxItem {
    fn from(m: &OutboxMessage) -> Self {
        Self {
            pk: format!("outbox#{}", m.id),
            id: m.id.clone(),
            name: m.event.name().to_owned(),
            payload: String::from_utf8_lossy(&m.event.to_json()).into_owned(),
            occurred_at: millis(m.occurred_at),
            traceparent: m.trace_parent.clone(),
            g1pk: OUTBOX.to_owned(),
            g1sk: m.id.clone(),
        }
    }
}

impl TryFrom<OutboxItem> for OutboxMessage {
    type Error = RepositoryError;
    fn try_from(d: OutboxItem) -> Result<Self, RepositoryError> {
        Ok(Self {
            event: DomainEvent::from_json(&d.name, d.payload.as_bytes())
                .map_err(|e| corrupt(&format!("an undecodable outbox message: {e}")))?,
            id: d.id,
            occurred_at: time(d.occurred_at)?,
            trace_parent: d.traceparent,
        })
    }
}
