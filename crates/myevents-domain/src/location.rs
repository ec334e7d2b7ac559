//! Locations (venues) and their halls.

use crate::id::LocationId;
use crate::seats::SeatCount;
use crate::validation::{ValidationError, Validator};

/// Longest accepted name, address or country, in characters.
pub const MAX_TEXT_CHARS: usize = 256;

/// A hall inside a location, with its seat capacity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hall {
    /// The hall's name, unique within its location (e.g. `A`).
    pub name: String,
    /// Where the hall is inside the building (e.g. `1st floor`); may be empty.
    pub location: String,
    /// Seats in the hall.
    pub capacity: SeatCount,
}

/// A venue: where events take place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Its id.
    pub id: LocationId,
    /// Display name, never empty.
    pub name: String,
    /// Postal address; may be empty.
    pub address: String,
    /// Country (free text, e.g. an ISO 3166 code); may be empty.
    pub country: String,
    /// Opening hour of the day, 0-23.
    pub open_time: u8,
    /// Closing hour of the day, 0-23.
    pub close_time: u8,
    /// Its halls, in the order given.
    pub halls: Vec<Hall>,
}

impl Location {
    /// The hall called `name`, compared exactly.
    pub fn hall(&self, name: &str) -> Option<&Hall> {
        self.halls.iter().find(|hall| hall.name == name)
    }

    /// The sum of the halls' capacities, or `None` if it is more than [`SeatCount::MAX_ON_SALE`].
    pub fn total_capacity(&self) -> Option<SeatCount> {
        self.halls
            .iter()
            .try_fold(SeatCount::new(0), |sum, hall| {
                sum.checked_add(hall.capacity)
            })
            .filter(|total| total.get() <= SeatCount::MAX_ON_SALE)
    }
}

/// A hall as a client describes it, before validation. Numbers are wide so that a negative or huge
/// value is reported as a field error rather than a parse failure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HallDraft {
    /// Name (required, non-empty).
    pub name: Option<String>,
    /// Position in the building.
    pub location: Option<String>,
    /// Seats (required, 0 ..= `u32::MAX`).
    pub capacity: Option<i64>,
}

/// A location as a client describes it, before validation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationDraft {
    /// Name (required, non-empty).
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// Country.
    pub country: Option<String>,
    /// Opening hour, 0-23 (default 0).
    pub open_time: Option<i64>,
    /// Closing hour, 0-23 (default 0).
    pub close_time: Option<i64>,
    /// Halls.
    pub halls: Vec<HallDraft>,
}

pub(crate) fn check_text(
    v: &mut Validator,
    field: &str,
    value: Option<String>,
    required: bool,
) -> String {
    let value = value.map(|s| s.trim().to_owned()).unwrap_or_default();
    if required && value.is_empty() {
        v.push(field, "must not be empty");
    } else if value.chars().count() > MAX_TEXT_CHARS {
        v.push(
            field,
            format!("must have at most {MAX_TEXT_CHARS} characters"),
        );
    } else if value.chars().any(char::is_control) {
        v.push(field, "must not contain control characters");
    }
    value
}

fn check_hour(v: &mut Validator, field: &str, value: Option<i64>) -> u8 {
    match value.unwrap_or(0) {
        hour @ 0..=23 => u8::try_from(hour).unwrap_or_default(),
        _ => {
            v.push(field, "must be an hour of the day, 0 to 23");
            0
        }
    }
}

/// Checks a seat number given by a client: 0 ..= `u32::MAX`.
fn check_seats(v: &mut Validator, field: &str, value: i64) -> SeatCount {
    match u32::try_from(value) {
        Ok(seats) if seats <= SeatCount::MAX_ON_SALE => SeatCount::new(seats),
        Err(_) if value < 0 => {
            v.push(field, "must not be negative");
            SeatCount::new(0)
        }
        _ => {
            v.push(field, format!("must be at most {}", SeatCount::MAX_ON_SALE));
            SeatCount::new(0)
        }
    }
}

impl LocationDraft {
    /// Validates the draft into a [`Location`] with the given id. `prefix` is prepended to field names in
    /// errors (`""` for a location on its own, `"Location."` when nested in an event).
    ///
    /// # Errors
    /// [`ValidationError`] naming every field that breaks a rule: empty name, an hour outside 0-23,
    /// a hall without a name, a duplicate hall name, a negative capacity.
    pub fn validate(self, id: LocationId, prefix: &str) -> Result<Location, ValidationError> {
        let mut v = Validator::new();
        let name = check_text(&mut v, &format!("{prefix}Name"), self.name, true);
        let address = check_text(&mut v, &format!("{prefix}Address"), self.address, false);
        let country = check_text(&mut v, &format!("{prefix}Country"), self.country, false);
        let open_time = check_hour(&mut v, &format!("{prefix}OpenTime"), self.open_time);
        let close_time = check_hour(&mut v, &format!("{prefix}CloseTime"), self.close_time);
        let mut halls: Vec<Hall> = Vec::with_capacity(self.halls.len());
        for (i, hall) in self.halls.into_iter().enumerate() {
            let field = format!("{prefix}Halls[{i}]");
            let name = check_text(&mut v, &format!("{field}.name"), hall.name, true);
            let location = check_text(&mut v, &format!("{field}.location"), hall.location, false);
            let capacity = match hall.capacity {
                Some(capacity) => check_seats(&mut v, &format!("{field}.capacity"), capacity),
                None => {
                    v.push(format!("{field}.capacity"), "is required");
                    SeatCount::new(0)
                }
            };
            if !name.is_empty() && halls.iter().any(|h| h.name == name) {
                v.push(
                    format!("{field}.name"),
                    "must be unique within the location",
                );
            }
            halls.push(Hall {
                name,
                location,
                capacity,
            });
        }
        v.finish()?;
        Ok(Location {
            id,
            name,
            address,
            country,
            open_time,
            close_time,
            halls,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft() -> LocationDraft {
        LocationDraft {
            name: Some("West Hall".into()),
            address: Some("1 Main St".into()),
            country: Some("DE".into()),
            open_time: Some(8),
            close_time: Some(22),
            halls: vec![
                HallDraft {
                    name: Some("A".into()),
                    location: Some("1st floor".into()),
                    capacity: Some(100),
                },
                HallDraft {
                    name: Some("B".into()),
                    location: None,
                    capacity: Some(50),
                },
            ],
        }
    }

    #[test]
    fn a_valid_draft_becomes_a_location_with_its_total_capacity() {
        let location = draft().validate(LocationId::generate(), "").expect("valid");
        assert_eq!(location.total_capacity(), Some(SeatCount::new(150)));
        assert_eq!(
            location.hall("B").map(|h| h.capacity),
            Some(SeatCount::new(50))
        );
    }

    #[test]
    fn every_broken_rule_is_named_with_its_wire_field() {
        let mut d = draft();
        d.name = Some("  ".into());
        d.open_time = Some(24);
        d.halls[0].capacity = Some(-1);
        d.halls[1].name = Some("A".into());
        let err = d
            .validate(LocationId::generate(), "Location.")
            .expect_err("invalid");
        let fields: Vec<_> = err.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "Location.Name",
                "Location.OpenTime",
                "Location.Halls[0].capacity",
                "Location.Halls[1].name"
            ]
        );
    }

    #[test]
    fn a_hall_beyond_the_documents_int32_is_refused() {
        let mut d = draft();
        d.halls[0].capacity = Some(2_147_483_648);
        let err = d
            .clone()
            .validate(LocationId::generate(), "")
            .expect_err("too large");
        assert_eq!(err.0[0].field, "Halls[0].capacity");
        assert!(err.0[0].message.contains("2147483647"), "{err}");
        d.halls[0].capacity = Some(2_147_483_647);
        let location = d.validate(LocationId::generate(), "").expect("valid");
        assert_eq!(
            location.total_capacity(),
            None,
            "more seats than the documents can say"
        );
    }
}
