//! The JSON wire format of the reference MyEvents (Go field names as keys; halls in lower case).
//!
//! Output: `Event {ID, Name, Duration (minutes), StartDate, EndDate (Unix seconds), Location, Hall?,
//! Capacity}`; `Location {ID, Name, Address, Country, OpenTime, CloseTime (hour 0-23), Halls}`;
//! `Hall {name, location (omitted when empty), capacity}`. `Hall`, `Capacity` and `SeatsAvailable` are
//! our additions.
//!
//! Input: keys match case-insensitively (the body is lower-cased before it reaches these types),
//! unknown keys are ignored, an id is `"<24hex>"`, `""`, `null` or `{"$oid":"<24hex>"}`.

use myevents_domain::event::{Event, EventDraft};
use myevents_domain::id::{LocationId, ObjectId};
use myevents_domain::location::{Hall, HallDraft, Location, LocationDraft};
use myevents_domain::validation::ValidationError;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::service::EventLocation;

/// A hall on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HallBody {
    /// Hall name.
    pub name: String,
    /// Position in the building; omitted when empty (as the reference does).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub location: String,
    /// Seats.
    pub capacity: u32,
}

/// A location on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct LocationBody {
    /// 24-hex id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Name.
    pub name: String,
    /// Address.
    pub address: String,
    /// Country.
    pub country: String,
    /// Opening hour, 0-23.
    pub open_time: u8,
    /// Closing hour, 0-23.
    pub close_time: u8,
    /// Halls.
    pub halls: Vec<HallBody>,
}

/// An event on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct EventBody {
    /// 24-hex id.
    #[serde(rename = "ID")]
    pub id: String,
    /// Name.
    pub name: String,
    /// Minutes.
    pub duration: u32,
    /// Unix seconds.
    pub start_date: i64,
    /// Unix seconds.
    pub end_date: i64,
    /// The location (with its halls).
    pub location: LocationBody,
    /// The chosen hall, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hall: Option<String>,
    /// Seats on sale.
    pub capacity: u32,
    /// Seats not yet booked, as the booking service last announced (eventually consistent).
    pub seats_available: u32,
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
        }
    }
}

/// A hall in a request (lower-cased keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct HallInput {
    name: Option<String>,
    location: Option<String>,
    capacity: Option<i64>,
}

/// A location in a request (lower-cased keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct LocationInput {
    id: Option<Value>,
    name: Option<String>,
    address: Option<String>,
    country: Option<String>,
    opentime: Option<i64>,
    closetime: Option<i64>,
    halls: Option<Vec<HallInput>>,
}

/// An event in a request (lower-cased keys).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct EventInput {
    name: Option<String>,
    duration: Option<i64>,
    startdate: Option<i64>,
    enddate: Option<i64>,
    location: Option<LocationInput>,
    hall: Option<String>,
    capacity: Option<i64>,
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
                .map(|h| HallDraft {
                    name: h.name,
                    location: h.location,
                    capacity: h.capacity,
                })
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
