//! Events: a show with a name, a time span, a location and a seat capacity.

use chrono::{DateTime, Utc};

use crate::booking::UserId;
pub use crate::cancellation::{EventCancellation, MAX_REASON_CHARS};
use crate::id::EventId;
use crate::location::{Location, check_text};
use crate::seats::SeatCount;
use crate::validation::{ValidationError, Validator};

/// An event as stored by the event service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Its id.
    pub id: EventId,
    /// Display name, never empty.
    pub name: String,
    /// Length in minutes.
    pub duration_minutes: u32,
    /// Start, UTC (whole seconds).
    pub start: DateTime<Utc>,
    /// End, UTC (whole seconds), never before `start`.
    pub end: DateTime<Utc>,
    /// Where it takes place (a copy of the location when the event was created).
    pub location: Location,
    /// The hall it takes place in, when one was chosen.
    pub hall: Option<String>,
    /// Seats on sale.
    pub capacity: SeatCount,
    /// Seats booked, as the booking service announced them (eventually consistent).
    pub seats_booked: SeatCount,
    /// The organiser who created it (the creator's user id: a token's `sub`, or `X-User-Id` with
    /// authentication off), who alone with administrators sees its bookings, edits or cancels it;
    /// `None` for events stored before organisers were recorded (then administrators only).
    pub organiser: Option<UserId>,
    /// How many times it was changed since it was created: 0 when created, one more per edit and
    /// for its cancellation. Orders the `eventUpdated` and `eventCancelled` messages of one event,
    /// so a consumer applies each change once and never an older one over a newer one.
    pub revision: u64,
    /// When and why it was called off; `None` while it is on. A cancelled event is listed, refuses
    /// bookings and changes, and has no seats on sale.
    pub cancelled: Option<EventCancellation>,
}

impl Event {
    /// Seats still on sale as far as the event service knows: capacity minus seats booked, never
    /// below zero; none once the event is cancelled.
    pub fn seats_available(&self) -> SeatCount {
        if self.cancelled.is_some() {
            return SeatCount::new(0);
        }
        self.capacity
            .checked_sub(self.seats_booked)
            .unwrap_or(SeatCount::new(0))
    }

    /// The event after its organiser's `patch`: the fields the patch names changed, validated by
    /// the rules of a new event (see [`EventDraft::validate`]; the capacity stays an explicit
    /// number of seats), one revision later. The seats booked, the location, the hall and the
    /// organiser stay.
    ///
    /// # Errors
    /// [`ChangeRefused::Cancelled`] for a cancelled event; [`ChangeRefused::BelowBooked`] for a
    /// capacity below the seats booked; [`ChangeRefused::Invalid`] naming each broken field.
    pub fn patched(&self, patch: EventPatch) -> Result<Self, ChangeRefused> {
        if self.cancelled.is_some() {
            return Err(ChangeRefused::Cancelled);
        }
        let seconds = |time: DateTime<Utc>| Some(time.timestamp());
        let draft = EventDraft {
            name: patch.name.or_else(|| Some(self.name.clone())),
            duration: patch
                .duration
                .or_else(|| Some(i64::from(self.duration_minutes))),
            start_date: patch.start_date.or_else(|| seconds(self.start)),
            end_date: patch.end_date.or_else(|| seconds(self.end)),
            hall: self.hall.clone(),
            capacity: patch
                .capacity
                .or_else(|| Some(i64::from(self.capacity.get()))),
        };
        let changed = draft.validate(self.id, self.location.clone())?;
        if changed.capacity < self.seats_booked {
            return Err(ChangeRefused::BelowBooked {
                booked: self.seats_booked,
            });
        }
        Ok(Self {
            seats_booked: self.seats_booked,
            organiser: self.organiser.clone(),
            revision: self.revision + 1,
            cancelled: None,
            ..changed
        })
    }

    /// The event called off at `at` for `reason`, one revision later.
    ///
    /// # Errors
    /// [`ChangeRefused::Invalid`] on the field `Reason` when the reason is refused by
    /// [`check_reason`]; else [`ChangeRefused::Cancelled`] when it is cancelled already.
    pub fn cancelled(&self, at: DateTime<Utc>, reason: String) -> Result<Self, ChangeRefused> {
        check_reason(&reason)?;
        if self.cancelled.is_some() {
            return Err(ChangeRefused::Cancelled);
        }
        Ok(Self {
            revision: self.revision + 1,
            cancelled: Some(EventCancellation { at, reason }),
            ..self.clone()
        })
    }
}

/// Checks a cancellation reason: at most [`MAX_REASON_CHARS`] characters, no control characters.
///
/// # Errors
/// [`ValidationError`] on the field `Reason`.
pub fn check_reason(reason: &str) -> Result<(), ValidationError> {
    if reason.chars().count() > MAX_REASON_CHARS {
        return Err(ValidationError::field(
            "Reason",
            format!("must have at most {MAX_REASON_CHARS} characters"),
        ));
    }
    if reason.chars().any(char::is_control) {
        return Err(ValidationError::field(
            "Reason",
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Why an organiser's change of an event was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeRefused {
    /// The change breaks a rule (one entry per field).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The event is cancelled: it changes no more.
    #[error("the event is cancelled and changes no more")]
    Cancelled,
    /// The capacity asked for is below the seats booked.
    #[error("{booked} seats are booked: the capacity cannot go below that")]
    BelowBooked {
        /// Seats booked (as the event service knows them).
        booked: SeatCount,
    },
}

/// An organiser's change of an event, before validation: each field given replaces the stored
/// one, an absent field keeps it. Units as in [`EventDraft`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventPatch {
    /// New name (non-empty).
    pub name: Option<String>,
    /// New length in minutes.
    pub duration: Option<i64>,
    /// New start, Unix seconds.
    pub start_date: Option<i64>,
    /// New end, Unix seconds (`>=` the start).
    pub end_date: Option<i64>,
    /// New capacity in seats (at least the seats booked).
    pub capacity: Option<i64>,
}

/// An event as a client describes it, before validation. Times are Unix seconds; numbers are wide so
/// out-of-range values become field errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventDraft {
    /// Name (required, non-empty).
    pub name: Option<String>,
    /// Length in minutes (default 0).
    pub duration: Option<i64>,
    /// Start, Unix seconds (required).
    pub start_date: Option<i64>,
    /// End, Unix seconds (required, `>= start_date`).
    pub end_date: Option<i64>,
    /// Name of one of the location's halls.
    pub hall: Option<String>,
    /// Explicit capacity in seats; overrides the hall's or location's.
    pub capacity: Option<i64>,
}

/// The latest time an event may start or end, in Unix seconds: 9999-12-31T23:59:59Z. RFC 3339 (the
/// dates of `eventCreated`) has four-digit years, and the stores keep the dates as datetimes; later
/// times are refused as invalid (422), never stored.
pub const LATEST_TIME: i64 = 253_402_300_799;

fn check_time(v: &mut Validator, field: &str, value: Option<i64>) -> Option<DateTime<Utc>> {
    match value {
        None => {
            v.push(field, "is required (Unix seconds)");
            None
        }
        Some(seconds) if seconds < 0 => {
            v.push(field, "must not be negative (Unix seconds)");
            None
        }
        Some(seconds) if seconds > LATEST_TIME => {
            v.push(
                field,
                "must be at most 253402300799 (9999-12-31T23:59:59Z, Unix seconds)",
            );
            None
        }
        Some(seconds) => match DateTime::from_timestamp(seconds, 0) {
            Some(time) => Some(time),
            None => {
                v.push(field, "is out of range (Unix seconds)");
                None
            }
        },
    }
}

impl EventDraft {
    /// Validates the draft into an [`Event`] held at `location`.
    ///
    /// Capacity: an explicit `capacity` wins; else the chosen hall's capacity; else the sum of the
    /// location's halls. A capacity of zero seats cannot be sold and is refused.
    ///
    /// # Errors
    /// [`ValidationError`] naming each broken field: `Name` empty, `Duration`/`Capacity` negative,
    /// `StartDate`/`EndDate` missing or negative, `EndDate` before `StartDate`, `Hall` unknown at the
    /// location, `Capacity` undeterminable (no explicit capacity, no hall, no halls).
    pub fn validate(self, id: EventId, location: Location) -> Result<Event, ValidationError> {
        let mut v = Validator::new();
        let name = check_text(&mut v, "Name", self.name, true);
        let duration_minutes = match self.duration.unwrap_or(0) {
            d if d < 0 => {
                v.push("Duration", "must not be negative (minutes)");
                0
            }
            // At most what the documents' `int32` says (2,147,483,647 minutes).
            d => u32::try_from(d)
                .ok()
                .filter(|d| i32::try_from(*d).is_ok())
                .unwrap_or_else(|| {
                    v.push("Duration", "is too large (minutes, at most 2147483647)");
                    0
                }),
        };
        let start = check_time(&mut v, "StartDate", self.start_date);
        let end = check_time(&mut v, "EndDate", self.end_date);
        if let (Some(start), Some(end)) = (start, end)
            && end < start
        {
            v.push("EndDate", "must not be before StartDate");
        }
        let hall = self
            .hall
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty());
        let hall_capacity = match &hall {
            Some(name) => match location.hall(name) {
                Some(hall) => Some(hall.capacity),
                None => {
                    v.push("Hall", format!("no hall named {name:?} at this location"));
                    None
                }
            },
            None => None,
        };
        const UNDETERMINED: &str =
            "cannot be determined: give Capacity, a Hall, or a location with halls that have seats";
        let capacity = match (self.capacity, &hall, hall_capacity) {
            (Some(explicit), _, _) => match u32::try_from(explicit) {
                Ok(0) => Err(Some("an event needs at least one seat")),
                Ok(seats) if seats <= SeatCount::MAX_ON_SALE => Ok(SeatCount::new(seats)),
                Err(_) if explicit < 0 => Err(Some("must not be negative (seats)")),
                _ => Err(Some("is too large (seats, at most 2147483647)")),
            },
            // The unknown hall was reported above.
            (None, Some(_), None) => Err(None),
            (None, Some(_), Some(seats)) if seats.is_zero() => Err(Some(UNDETERMINED)),
            (None, Some(_), Some(seats)) => Ok(seats),
            (None, None, _) => match location.total_capacity() {
                Some(seats) if !seats.is_zero() => Ok(seats),
                _ => Err(Some(UNDETERMINED)),
            },
        };
        let capacity = capacity.unwrap_or_else(|reason| {
            if let Some(reason) = reason {
                v.push("Capacity", reason);
            }
            SeatCount::new(0)
        });
        v.finish()?;
        let (Some(start), Some(end)) = (start, end) else {
            return Err(ValidationError::field("StartDate", "is required"));
        };
        Ok(Event {
            id,
            name,
            duration_minutes,
            start,
            end,
            location,
            hall,
            capacity,
            seats_booked: SeatCount::new(0),
            organiser: None,
            revision: 0,
            cancelled: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::LocationId;
    use crate::location::Hall;

    fn location(halls: &[(&str, u32)]) -> Location {
        Location {
            id: LocationId::generate(),
            name: "West Hall".into(),
            address: String::new(),
            country: String::new(),
            open_time: 8,
            close_time: 22,
            halls: halls
                .iter()
                .map(|(name, seats)| Hall {
                    name: (*name).into(),
                    location: String::new(),
                    capacity: SeatCount::new(*seats),
                })
                .collect(),
            organiser: None,
            revision: 0,
        }
    }

    fn draft() -> EventDraft {
        EventDraft {
            name: Some("opera aida".into()),
            duration: Some(120),
            start_date: Some(1_768_000_000),
            end_date: Some(1_768_007_200),
            hall: None,
            capacity: None,
        }
    }

    fn fields(err: &ValidationError) -> Vec<&str> {
        err.0.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn capacity_is_the_sum_of_the_halls_without_a_hall() {
        let event = draft()
            .validate(EventId::generate(), location(&[("A", 100), ("B", 50)]))
            .expect("valid");
        assert_eq!(event.capacity, SeatCount::new(150));
    }

    #[test]
    fn a_hall_selects_its_capacity_and_an_explicit_capacity_overrides_it() {
        let mut d = draft();
        d.hall = Some("B".into());
        let event = d
            .clone()
            .validate(EventId::generate(), location(&[("A", 100), ("B", 50)]))
            .expect("valid");
        assert_eq!(event.capacity, SeatCount::new(50));
        d.capacity = Some(10);
        let event = d
            .validate(EventId::generate(), location(&[("A", 100), ("B", 50)]))
            .expect("valid");
        assert_eq!(event.capacity, SeatCount::new(10));
    }

    #[test]
    fn an_unknown_hall_is_named() {
        let mut d = draft();
        d.hall = Some("Z".into());
        let err = d
            .validate(EventId::generate(), location(&[("A", 100)]))
            .expect_err("invalid");
        assert_eq!(fields(&err), ["Hall"]);
    }

    #[test]
    fn a_capacity_beyond_the_documents_int32_is_refused() {
        let mut d = draft();
        d.capacity = Some(2_147_483_648);
        let err = d
            .clone()
            .validate(EventId::generate(), location(&[("A", 1)]))
            .expect_err("too large");
        assert_eq!(fields(&err), ["Capacity"]);
        d.capacity = Some(2_147_483_647);
        let event = d
            .validate(EventId::generate(), location(&[("A", 1)]))
            .expect("valid");
        assert_eq!(event.capacity, SeatCount::new(SeatCount::MAX_ON_SALE));
        // Halls that add up to more are refused as well.
        let err = draft()
            .validate(
                EventId::generate(),
                location(&[("A", 2_000_000_000), ("B", 2_000_000_000)]),
            )
            .expect_err("too many seats");
        assert_eq!(fields(&err), ["Capacity"]);
    }

    fn booked(seats: u32) -> Event {
        let mut event = draft()
            .validate(EventId::generate(), location(&[("A", 100)]))
            .expect("valid");
        event.seats_booked = SeatCount::new(seats);
        event
    }

    #[test]
    fn a_patch_changes_the_fields_it_names_one_revision_later() {
        let event = booked(30);
        let changed = event
            .patched(EventPatch {
                name: Some("opera tosca".into()),
                capacity: Some(40),
                ..EventPatch::default()
            })
            .expect("valid");
        assert_eq!(changed.name, "opera tosca");
        assert_eq!(changed.capacity, SeatCount::new(40));
        assert_eq!(changed.seats_available(), SeatCount::new(10));
        assert_eq!((changed.start, changed.end), (event.start, event.end));
        assert_eq!(changed.revision, event.revision + 1);
        assert_eq!(changed.location, event.location);
    }

    #[test]
    fn a_patch_below_the_seats_booked_or_breaking_a_rule_or_of_a_cancelled_event_is_refused() {
        let event = booked(30);
        let shrink = EventPatch {
            capacity: Some(29),
            ..EventPatch::default()
        };
        assert_eq!(
            event.patched(shrink),
            Err(ChangeRefused::BelowBooked {
                booked: SeatCount::new(30)
            })
        );
        let exact = EventPatch {
            capacity: Some(30),
            ..EventPatch::default()
        };
        assert_eq!(
            event.patched(exact).map(|e| e.seats_available()),
            Ok(SeatCount::new(0))
        );
        let backwards = EventPatch {
            end_date: Some(event.start.timestamp() - 1),
            ..EventPatch::default()
        };
        assert!(matches!(
            event.patched(backwards),
            Err(ChangeRefused::Invalid(e)) if fields(&e) == ["EndDate"]
        ));
        let cancelled = event
            .cancelled(Utc::now(), "storm".into())
            .expect("cancelled");
        assert_eq!(cancelled.revision, event.revision + 1);
        assert_eq!(cancelled.seats_available(), SeatCount::new(0));
        assert_eq!(
            cancelled.patched(EventPatch::default()),
            Err(ChangeRefused::Cancelled)
        );
        assert_eq!(
            cancelled.cancelled(Utc::now(), String::new()),
            Err(ChangeRefused::Cancelled)
        );
        assert!(matches!(
            event.cancelled(Utc::now(), "x".repeat(MAX_REASON_CHARS + 1)),
            Err(ChangeRefused::Invalid(_))
        ));
    }

    #[test]
    fn an_undeterminable_capacity_is_named() {
        let err = draft()
            .validate(EventId::generate(), location(&[]))
            .expect_err("invalid");
        assert_eq!(fields(&err), ["Capacity"]);
    }

    #[test]
    fn end_before_start_negative_numbers_and_empty_name_are_named() {
        let d = EventDraft {
            name: Some(String::new()),
            duration: Some(-5),
            start_date: Some(100),
            end_date: Some(50),
            hall: None,
            capacity: Some(-1),
        };
        let err = d
            .validate(EventId::generate(), location(&[("A", 1)]))
            .expect_err("invalid");
        assert_eq!(fields(&err), ["Name", "Duration", "EndDate", "Capacity"]);
    }

    #[test]
    fn dates_past_the_year_9999_are_named_and_the_last_second_is_kept() {
        for (start, end) in [
            (LATEST_TIME + 1, LATEST_TIME + 2),
            (1_288_293_858_685, 1_288_293_858_686),
            (100, i64::MAX),
        ] {
            let d = EventDraft {
                start_date: Some(start),
                end_date: Some(end),
                ..draft()
            };
            let err = d
                .validate(EventId::generate(), location(&[("A", 1)]))
                .expect_err("invalid");
            assert!(fields(&err).contains(&"EndDate"), "{start}..{end}");
        }
        let last = EventDraft {
            start_date: Some(LATEST_TIME),
            end_date: Some(LATEST_TIME),
            ..draft()
        }
        .validate(EventId::generate(), location(&[("A", 1)]))
        .expect("the last second of 9999 is valid");
        assert_eq!(last.start.to_rfc3339(), "9999-12-31T23:59:59+00:00");
    }
}
