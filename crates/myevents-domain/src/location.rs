//! Locations (venues) and their halls.

use crate::booking::UserId;
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
    /// The organiser who created it (the creator's user id), who alone with administrators renames,
    /// extends or deletes it; `None` for locations stored before creators were recorded (then
    /// administrators only).
    pub organiser: Option<UserId>,
    /// How many times it was changed since it was created: 0 when created, one more per change and
    /// for its deletion. Orders the `locationUpdated` and `locationDeleted` messages of one
    /// location.
    pub revision: u64,
}

impl Location {
    /// The hall called `name`, compared exactly.
    pub fn hall(&self, name: &str) -> Option<&Hall> {
        self.halls.iter().find(|hall| hall.name == name)
    }

    /// The location after its organiser's `patch`: the fields the patch names changed, validated by
    /// the rules of a new location, one revision later. `Halls`, when given, is the whole list: its
    /// first entries are the stored halls in their order, each of which may be renamed, moved or
    /// given more seats; entries past them are new halls. The id and the organiser stay.
    ///
    /// # Errors
    /// [`LocationChangeRefused::Invalid`] naming each broken field;
    /// [`LocationChangeRefused::HallsRemoved`] for fewer halls than stored;
    /// [`LocationChangeRefused::HallShrunk`] for a stored hall given fewer seats.
    pub fn patched(&self, patch: LocationPatch) -> Result<Self, LocationChangeRefused> {
        let hall_draft = |hall: &Hall| HallDraft {
            name: Some(hall.name.clone()),
            location: Some(hall.location.clone()),
            capacity: Some(i64::from(hall.capacity.get())),
        };
        let draft = LocationDraft {
            name: patch.name.or_else(|| Some(self.name.clone())),
            address: patch.address.or_else(|| Some(self.address.clone())),
            country: patch.country.or_else(|| Some(self.country.clone())),
            open_time: patch.open_time.or(Some(i64::from(self.open_time))),
            close_time: patch.close_time.or(Some(i64::from(self.close_time))),
            halls: patch
                .halls
                .unwrap_or_else(|| self.halls.iter().map(hall_draft).collect()),
        };
        let changed = draft.validate(self.id, "")?;
        if changed.halls.len() < self.halls.len() {
            return Err(LocationChangeRefused::HallsRemoved {
                stored: self.halls.len(),
            });
        }
        for (index, (before, after)) in self.halls.iter().zip(&changed.halls).enumerate() {
            if after.capacity < before.capacity {
                return Err(LocationChangeRefused::HallShrunk {
                    index,
                    hall: before.name.clone(),
                    capacity: before.capacity,
                });
            }
        }
        Ok(Self {
            organiser: self.organiser.clone(),
            revision: self.revision + 1,
            ..changed
        })
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

/// Why an organiser's change of a location was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationChangeRefused {
    /// The change breaks a rule (one entry per field).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// `Halls` lists fewer halls than are stored: halls are renamed and extended, never removed
    /// (events were planned in them).
    #[error("the location has {stored} halls: they are renamed and extended, never removed")]
    HallsRemoved {
        /// Halls stored.
        stored: usize,
    },
    /// A stored hall was given fewer seats than it has: halls grow, never shrink.
    #[error("hall {hall:?} (Halls[{index}]) has {capacity} seats: a hall grows, never shrinks")]
    HallShrunk {
        /// Its position in `Halls`, from 0.
        index: usize,
        /// Its stored name.
        hall: String,
        /// Its stored capacity in seats.
        capacity: SeatCount,
    },
}

/// An organiser's change of a location, before validation: each field given replaces the stored
/// one, an absent field keeps it. Units as in [`LocationDraft`]; see [`Location::patched`] for
/// `halls`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocationPatch {
    /// New name (non-empty).
    pub name: Option<String>,
    /// New address.
    pub address: Option<String>,
    /// New country.
    pub country: Option<String>,
    /// New opening hour, 0-23.
    pub open_time: Option<i64>,
    /// New closing hour, 0-23.
    pub close_time: Option<i64>,
    /// The whole list of halls: the stored ones first, in order (renamed, moved or grown), then
    /// new ones.
    pub halls: Option<Vec<HallDraft>>,
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
            organiser: None,
            revision: 0,
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
    fn a_patch_renames_and_extends_but_never_removes_or_shrinks_a_hall() {
        let location = draft().validate(LocationId::generate(), "").expect("valid");
        let grown = location
            .patched(LocationPatch {
                name: Some("East Hall".into()),
                halls: Some(vec![
                    HallDraft {
                        name: Some("A1".into()),
                        location: Some("ground floor".into()),
                        capacity: Some(120),
                    },
                    HallDraft {
                        name: Some("B".into()),
                        location: None,
                        capacity: Some(50),
                    },
                    HallDraft {
                        name: Some("C".into()),
                        location: None,
                        capacity: Some(10),
                    },
                ]),
                ..LocationPatch::default()
            })
            .expect("renamed and extended");
        assert_eq!(grown.name, "East Hall");
        assert_eq!(grown.address, "1 Main St", "absent fields stay");
        assert_eq!(grown.revision, location.revision + 1);
        assert_eq!(grown.total_capacity(), Some(SeatCount::new(180)));
        assert_eq!(
            grown.hall("A1").map(|h| h.location.as_str()),
            Some("ground floor")
        );

        let removed = location.patched(LocationPatch {
            halls: Some(draft().halls[..1].to_vec()),
            ..LocationPatch::default()
        });
        assert_eq!(
            removed,
            Err(LocationChangeRefused::HallsRemoved { stored: 2 })
        );
        let mut halls = draft().halls;
        halls[1].capacity = Some(49);
        let shrunk = location.patched(LocationPatch {
            halls: Some(halls),
            ..LocationPatch::default()
        });
        assert_eq!(
            shrunk,
            Err(LocationChangeRefused::HallShrunk {
                index: 1,
                hall: "B".into(),
                capacity: SeatCount::new(50)
            })
        );
        let invalid = location.patched(LocationPatch {
            name: Some(" ".into()),
            close_time: Some(25),
            ..LocationPatch::default()
        });
        let Err(LocationChangeRefused::Invalid(invalid)) = invalid else {
            panic!("invalid fields refused: {invalid:?}");
        };
        let fields: Vec<_> = invalid.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["Name", "CloseTime"]);
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
