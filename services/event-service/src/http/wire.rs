//! The JSON wire format of the reference MyEvents (Go field names as keys; halls in lower case).
//!
//! Output: `Event {ID, Name, Duration (minutes), StartDate, EndDate (Unix seconds), Location, Hall?,
//! Capacity, SeatsAvailable, CancelledAt?, CancellationReason?}`; `Location {ID, Name, Address, Country, OpenTime, CloseTime (hour 0-23), Halls}`;
//! `Hall {name, location (omitted when empty), capacity}`. `Hall`, `Capacity`, `SeatsAvailable`,
//! `CancelledAt` and `CancellationReason` are our additions.
//!
//! Input: keys match case-insensitively (the body is lower-cased before it reaches these types),
//! unknown keys are ignored, an id is `"<24hex>"`, `""`, `null` or `{"$oid":"<24hex>"}`, and an
//! optional field may be `null`, read as absent (as the reference's Go decoding reads it); the
//! documents say so (`"type": [..., "null"]`).

use myevents_domain::event::{Event, EventDraft, EventPatch};
use myevents_domain::id::{EventId, LocationId, ObjectId};
use myevents_domain::location::{Hall, HallDraft, Location, LocationDraft, LocationPatch};
use myevents_domain::seats::SeatCount;
use myevents_domain::validation::ValidationError;
use myevents_http::openapi::ResponseExample;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::service::EventLocation;

/// A hall on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Hall)]
pub struct HallBody {
    /// Hall name.
    #[schema(example = "A")]
    pub name: String,
    /// Position in the building; omitted when empty (as the reference does).
    #[serde(skip_serializing_if = "String::is_empty")]
    #[schema(required = false, example = "1st floor")]
    pub location: String,
    /// Seats.
    #[schema(example = 100)]
    pub capacity: u32,
}

/// A location on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = Location)]
pub struct LocationBody {
    /// 24-hex id.
    #[serde(rename = "ID")]
    #[schema(value_type = myevents_http::openapi::Id)]
    pub id: String,
    /// Name.
    #[schema(example = "West Hall")]
    pub name: String,
    /// Address.
    #[schema(example = "1 Main St")]
    pub address: String,
    /// Country.
    #[schema(example = "DE")]
    pub country: String,
    /// Opening hour, 0-23.
    #[schema(maximum = 23, example = 8)]
    pub open_time: u8,
    /// Closing hour, 0-23.
    #[schema(maximum = 23, example = 22)]
    pub close_time: u8,
    /// Halls.
    pub halls: Vec<HallBody>,
}

/// An event on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "PascalCase")]
#[schema(as = Event)]
pub struct EventBody {
    /// 24-hex id.
    #[serde(rename = "ID")]
    #[schema(value_type = myevents_http::openapi::Id)]
    pub id: String,
    /// Name.
    #[schema(example = "opera aida")]
    pub name: String,
    /// Minutes.
    #[schema(example = 120)]
    pub duration: u32,
    /// Unix seconds.
    #[schema(minimum = 0, maximum = 253_402_300_799_i64, example = 1_768_000_000)]
    pub start_date: i64,
    /// Unix seconds.
    #[schema(minimum = 0, maximum = 253_402_300_799_i64, example = 1_768_007_200)]
    pub end_date: i64,
    /// The location (with its halls).
    pub location: LocationBody,
    /// The chosen hall, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "A")]
    pub hall: Option<String>,
    /// Seats on sale.
    #[schema(minimum = 1, example = 100)]
    pub capacity: u32,
    /// Seats not yet booked, as the booking service last announced (eventually consistent); 0 once
    /// the event is cancelled.
    #[schema(example = 100)]
    pub seats_available: u32,
    /// When the event was called off, Unix seconds; omitted while it is on. A cancelled event
    /// refuses bookings and changes; its bookings are cancelled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0, example = 1_768_003_600)]
    pub cancelled_at: Option<i64>,
    /// Why it was called off, as its organiser said it; omitted while it is on, or when no reason
    /// was given.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, example = "the soloist is ill")]
    pub cancellation_reason: Option<String>,
}

impl From<&Hall> for HallBody {
    fn from(hall: &Hall) -> Self {
        Self {
            name: hall.name.clone(),
            location: hall.location.clone(),
            capacity: hall.capacity.get(),
        }
    }
}

impl From<&Location> for LocationBody {
    fn from(l: &Location) -> Self {
        Self {
            id: l.id.to_string(),
            name: l.name.clone(),
            address: l.address.clone(),
            country: l.country.clone(),
            open_time: l.open_time,
            close_time: l.close_time,
            halls: l.halls.iter().map(HallBody::from).collect(),
        }
    }
}

impl From<&Event> for EventBody {
    fn from(e: &Event) -> Self {
        Self {
            id: e.id.to_string(),
            name: e.name.clone(),
            duration: e.duration_minutes,
            start_date: e.start.timestamp(),
            end_date: e.end.timestamp(),
            location: LocationBody::from(&e.location),
            hall: e.hall.clone(),
            capacity: e.capacity.get(),
            seats_available: e.seats_available().get(),
            cancelled_at: e.cancelled.as_ref().map(|c| c.at.timestamp()),
            cancellation_reason: e
                .cancelled
                .as_ref()
                .map(|c| c.reason.clone())
                .filter(|reason| !reason.is_empty()),
        }
    }
}

// Request bodies: the serde names are the lower-cased keys (see the module docs); the documented
// names are the reference's, which clients send. Strings: the pattern refuses control characters
// and blank text, the service also trims surrounding white space.

/// The id of the location of the documents' examples.
pub const EXAMPLE_LOCATION_ID: [u8; 12] = [
    0x6b, 0x02, 0x6a, 0xaf, 0x68, 0x6c, 0x82, 0x2a, 0x56, 0xb0, 0xfe, 0x35,
];
/// The id of the event of the documents' examples.
pub const EXAMPLE_EVENT_ID: [u8; 12] = [
    0x6b, 0x02, 0x6a, 0xb2, 0x68, 0x6c, 0x82, 0x2a, 0x56, 0xb0, 0xfe, 0x36,
];

/// The document's response examples: a location with a hall and an event in it (2 of its 100
/// seats booked), as the handlers answer them — the same conversions, the same serialiser — with
/// fixed ids and times.
pub fn response_examples() -> Vec<ResponseExample> {
    let location = Location {
        id: LocationId::from(ObjectId::from_bytes(EXAMPLE_LOCATION_ID)),
        name: "West Hall".to_owned(),
        address: "1 Main St".to_owned(),
        country: "DE".to_owned(),
        open_time: 8,
        close_time: 22,
        halls: vec![Hall {
            name: "A".to_owned(),
            location: "1st floor".to_owned(),
            capacity: SeatCount::new(100),
        }],
        organiser: None,
        revision: 0,
    };
    let at = |seconds| chrono::DateTime::from_timestamp(seconds, 0).unwrap_or_default();
    let event = Event {
        id: EventId::from(ObjectId::from_bytes(EXAMPLE_EVENT_ID)),
        name: "opera aida".to_owned(),
        duration_minutes: 120,
        start: at(1_768_000_000),
        end: at(1_768_007_200),
        location: location.clone(),
        hall: Some("A".to_owned()),
        capacity: SeatCount::new(100),
        seats_booked: SeatCount::new(2),
        organiser: None,
        revision: 0,
        cancelled: None,
    };
    let renamed = Event {
        name: "opera tosca".to_owned(),
        revision: 1,
        ..event.clone()
    };
    let cancelled = renamed
        .cancelled(at(1_768_003_600), "the soloist is ill".to_owned())
        .unwrap_or_else(|_| renamed.clone());
    let location = LocationBody::from(&location);
    let event = EventBody::from(&event);
    let renamed = EventBody::from(&renamed);
    let cancelled = EventBody::from(&cancelled);
    vec![
        ResponseExample::new("createLocation", "201", &location),
        ResponseExample::new("getLocation", "200", &location),
        ResponseExample::new("listLocations", "200", &[&location]),
        ResponseExample::new("createEvent", "201", &event),
        ResponseExample::new("getEvent", "200", &event),
        ResponseExample::new("getEventByIdPath", "200", &event),
        ResponseExample::new("getEventByName", "200", &event),
        ResponseExample::new("listEvents", "200", &[&event]),
        ResponseExample::new("changeEvent", "200", &renamed),
        ResponseExample::new("cancelEvent", "200", &cancelled),
    ]
}

/// A hall in a request (lower-cased keys).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(as = HallInput)]
pub struct HallInput {
    /// Hall name.
    #[schema(value_type = String, required = true, min_length = 1, max_length = 256,
        pattern = r"^(?=.*\S)[^\x00-\x1f\x7f-\x9f]*$", example = "A")]
    name: Option<String>,
    /// Position in the building.
    #[schema(required = false, value_type = Option<String>, max_length = 256, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$",
        example = "1st floor")]
    location: Option<String>,
    /// Seats.
    #[schema(value_type = u32, required = true, example = 100)]
    capacity: Option<i64>,
}

/// A location in a request (lower-cased keys). As `Location` of an event it either names a stored
/// location by `ID` (the other fields are then ignored) or describes a new one.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(as = LocationInput)]
pub struct LocationInput {
    /// A stored location's id (in an event); `""` or `null` for none. The reference's
    /// `{"$oid": "<24 hex>"}` is read too.
    #[schema(required = false, rename = "ID", value_type = Option<String>, pattern = "^([0-9a-fA-F]{24})?$")]
    id: Option<Value>,
    /// Name (required, unless `ID` names a stored location).
    #[schema(rename = "Name", value_type = Option<String>, required = false, min_length = 1,
        max_length = 256, pattern = r"^(?=.*\S)[^\x00-\x1f\x7f-\x9f]*$", example = "West Hall")]
    name: Option<String>,
    /// Address.
    #[schema(required = false, rename = "Address", value_type = Option<String>, max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", example = "1 Main St")]
    address: Option<String>,
    /// Country.
    #[schema(required = false, rename = "Country", value_type = Option<String>, max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", example = "DE")]
    country: Option<String>,
    /// Opening hour, 0-23 (default 0).
    #[schema(required = false, rename = "OpenTime", value_type = Option<u8>, maximum = 23, example = 8)]
    opentime: Option<i64>,
    /// Closing hour, 0-23 (default 0).
    #[schema(required = false, rename = "CloseTime", value_type = Option<u8>, maximum = 23, example = 22)]
    closetime: Option<i64>,
    /// Halls.
    #[schema(required = false, rename = "Halls", value_type = Option<Vec<HallInput>>)]
    halls: Option<Vec<HallInput>>,
}

/// A change of a location in a request (lower-cased keys): each field given replaces the stored
/// one, an absent (or `null`) field keeps it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(as = LocationPatchInput)]
pub struct LocationPatchInput {
    /// New name.
    #[schema(required = false, rename = "Name", value_type = Option<String>, min_length = 1,
        max_length = 256, pattern = r"^(?=.*\S)[^\x00-\x1f\x7f-\x9f]*$", example = "West Hall and Annex")]
    name: Option<String>,
    /// New address.
    #[schema(required = false, rename = "Address", value_type = Option<String>, max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", example = "1 Main St")]
    address: Option<String>,
    /// New country.
    #[schema(required = false, rename = "Country", value_type = Option<String>, max_length = 256,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", example = "DE")]
    country: Option<String>,
    /// New opening hour, 0-23.
    #[schema(required = false, rename = "OpenTime", value_type = Option<u8>, maximum = 23, example = 8)]
    opentime: Option<i64>,
    /// New closing hour, 0-23.
    #[schema(required = false, rename = "CloseTime", value_type = Option<u8>, maximum = 23, example = 23)]
    closetime: Option<i64>,
    /// The whole list of halls: the stored halls first, in their order (each may be renamed, moved
    /// or given more seats, never fewer: 409), then any new ones. Fewer halls than stored is 409.
    #[schema(required = false, rename = "Halls", value_type = Option<Vec<HallInput>>)]
    halls: Option<Vec<HallInput>>,
}

impl From<HallInput> for HallDraft {
    fn from(hall: HallInput) -> Self {
        Self {
            name: hall.name,
            location: hall.location,
            capacity: hall.capacity,
        }
    }
}

impl From<LocationPatchInput> for LocationPatch {
    fn from(input: LocationPatchInput) -> Self {
        Self {
            name: input.name,
            address: input.address,
            country: input.country,
            open_time: input.opentime,
            close_time: input.closetime,
            halls: input
                .halls
                .map(|halls| halls.into_iter().map(HallDraft::from).collect()),
        }
    }
}

/// An event in a request (lower-cased keys).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(as = EventInput)]
pub struct EventInput {
    /// Name.
    #[schema(rename = "Name", value_type = String, required = true, min_length = 1,
        max_length = 256, pattern = r"^(?=.*\S)[^\x00-\x1f\x7f-\x9f]*$", example = "opera aida")]
    name: Option<String>,
    /// Minutes (default 0).
    #[schema(required = false, rename = "Duration", value_type = Option<u32>, example = 120)]
    duration: Option<i64>,
    /// Start, Unix seconds.
    #[schema(rename = "StartDate", value_type = i64, required = true, minimum = 0,
        maximum = 253_402_300_799_i64, example = 1_768_000_000)]
    startdate: Option<i64>,
    /// End, Unix seconds, not before `StartDate`.
    #[schema(rename = "EndDate", value_type = i64, required = true, minimum = 0,
        maximum = 253_402_300_799_i64, example = 1_768_007_200)]
    enddate: Option<i64>,
    /// Where: a stored location (`{"ID": "<24 hex>"}`) or a new one.
    #[schema(rename = "Location", value_type = LocationInput, required = true)]
    location: Option<LocationInput>,
    /// One of the location's halls; its capacity is the event's unless `Capacity` says otherwise.
    #[schema(required = false, rename = "Hall", value_type = Option<String>, max_length = 256, example = "A")]
    hall: Option<String>,
    /// Seats on sale (default: the hall's, else the sum of the location's halls).
    #[schema(required = false, rename = "Capacity", value_type = Option<u32>, minimum = 1, example = 100)]
    capacity: Option<i64>,
}

/// A change of an event in a request (lower-cased keys): each field given replaces the stored one,
/// an absent (or `null`) field keeps it.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(as = EventPatchInput)]
pub struct EventPatchInput {
    /// New name.
    #[schema(required = false, rename = "Name", value_type = Option<String>, min_length = 1,
        max_length = 256, pattern = r"^(?=.*\S)[^\x00-\x1f\x7f-\x9f]*$", example = "opera tosca")]
    name: Option<String>,
    /// New length, minutes.
    #[schema(required = false, rename = "Duration", value_type = Option<u32>, example = 150)]
    duration: Option<i64>,
    /// New start, Unix seconds.
    #[schema(required = false, rename = "StartDate", value_type = Option<i64>, minimum = 0,
        maximum = 253_402_300_799_i64, example = 1_768_086_400)]
    startdate: Option<i64>,
    /// New end, Unix seconds, not before the start.
    #[schema(required = false, rename = "EndDate", value_type = Option<i64>, minimum = 0,
        maximum = 253_402_300_799_i64, example = 1_768_095_400)]
    enddate: Option<i64>,
    /// New number of seats on sale: more, or fewer down to the seats booked (fewer is 409).
    #[schema(required = false, rename = "Capacity", value_type = Option<u32>, minimum = 1, example = 120)]
    capacity: Option<i64>,
}

impl From<EventPatchInput> for EventPatch {
    fn from(input: EventPatchInput) -> Self {
        Self {
            name: input.name,
            duration: input.duration,
            start_date: input.startdate,
            end_date: input.enddate,
            capacity: input.capacity,
        }
    }
}

/// An event's cancellation in a request (lower-cased keys).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[schema(as = CancellationInput)]
pub struct CancellationInput {
    /// Why, shown with the event and in each cancelled booking (optional).
    #[schema(required = false, rename = "Reason", value_type = Option<String>, max_length = 500,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$", example = "the soloist is ill")]
    reason: Option<String>,
}

impl CancellationInput {
    /// The reason, trimmed (empty when none was given).
    pub fn reason(self) -> String {
        self.reason.unwrap_or_default().trim().to_owned()
    }
}

/// Reads an id the way the reference does: `"<24hex>"`, `""`/`null`/absent (none), `{"$oid":"<24hex>"}`.
///
/// # Errors
/// [`ValidationError`] on `field` for anything else.
pub fn lenient_id(value: Option<&Value>, field: &str) -> Result<Option<ObjectId>, ValidationError> {
    let text = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => s.as_str(),
        Some(Value::Object(map)) => match map.get("$oid") {
            Some(Value::String(s)) => s.as_str(),
            _ => {
                return Err(ValidationError::field(
                    field,
                    "expected {\"$oid\": \"<24 hex>\"}",
                ));
            }
        },
        Some(_) => return Err(ValidationError::field(field, "expected a 24-hex id string")),
    };
    if text.is_empty() {
        return Ok(None);
    }
    ObjectId::parse(text)
        .map(Some)
        .map_err(|e| ValidationError::field(field, e.to_string()))
}

impl LocationInput {
    /// The referenced location's id, when the client gave one.
    ///
    /// # Errors
    /// [`ValidationError`] on `<prefix>ID` when the id is malformed.
    pub fn reference(&self, prefix: &str) -> Result<Option<LocationId>, ValidationError> {
        Ok(lenient_id(self.id.as_ref(), &format!("{prefix}ID"))?.map(LocationId::from))
    }

    /// The location fields as a draft.
    pub fn into_draft(self) -> LocationDraft {
        LocationDraft {
            name: self.name,
            address: self.address,
            country: self.country,
            open_time: self.opentime,
            close_time: self.closetime,
            halls: self
                .halls
                .unwrap_or_default()
                .into_iter()
                .map(HallDraft::from)
                .collect(),
        }
    }

    /// Where an event with this `Location` takes place: the stored location its `ID` names, or a new
    /// one it describes.
    ///
    /// # Errors
    /// A field error on `Location.ID` when it is not an id.
    pub fn into_event_location(self) -> Result<EventLocation, ValidationError> {
        Ok(match self.reference("Location.")? {
            Some(id) => EventLocation::Stored(id),
            None => EventLocation::New(self.into_draft()),
        })
    }
}

impl EventInput {
    /// Splits the input into the event draft and its location part.
    pub fn into_parts(self) -> (EventDraft, Option<LocationInput>) {
        (
            EventDraft {
                name: self.name,
                duration: self.duration,
                start_date: self.startdate,
                end_date: self.enddate,
                hall: self.hall,
                capacity: self.capacity,
            },
            self.location,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_are_read_in_every_form_the_reference_accepts() {
        let hex = "6b026aaf686c822a56b0fe35";
        let id = ObjectId::parse(hex).expect("id");
        assert_eq!(lenient_id(Some(&json!(hex)), "ID"), Ok(Some(id)));
        assert_eq!(lenient_id(Some(&json!({"$oid": hex})), "ID"), Ok(Some(id)));
        assert_eq!(lenient_id(Some(&json!("")), "ID"), Ok(None));
        assert_eq!(lenient_id(Some(&Value::Null), "ID"), Ok(None));
        assert_eq!(lenient_id(None, "ID"), Ok(None));
        assert!(lenient_id(Some(&json!("xyz")), "ID").is_err());
        assert!(lenient_id(Some(&json!(12)), "ID").is_err());
    }
}
