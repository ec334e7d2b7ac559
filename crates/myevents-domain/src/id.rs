//! Identifiers: 12 bytes shown as 24 lower-case hex characters, the layout of a MongoDB ObjectId
//! (4 bytes of Unix seconds, 5 random bytes fixed per process, a 3-byte counter), so ids sort by
//! creation time and the reference's clients and database tools recognise them. Booking ids, which
//! name one buyer's purchase, keep the 4 bytes of seconds but take the other 8 from the operating
//! system's random source ([`ObjectId::unguessable`]): knowing one booking's id tells nothing about
//! another's.
//! Source: the BSON ObjectId specification (<https://www.mongodb.com/docs/manual/reference/method/ObjectId/>).

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a text is not an id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not exactly 24 characters.
    #[error("an id has 24 hex characters, this one has {0}")]
    Length(usize),
    /// A character outside `0-9a-fA-F`.
    #[error("an id has only hex characters (0-9, a-f)")]
    NotHex,
}

/// A 12-byte object id. Ordering follows creation time (then process and counter).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId([u8; 12]);

fn process_unique() -> &'static [u8; 5] {
    static UNIQUE: OnceLock<[u8; 5]> = OnceLock::new();
    UNIQUE.get_or_init(rand::random)
}

impl ObjectId {
    /// A new id for the current time.
    pub fn generate() -> Self {
        static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
        let counter = COUNTER
            .get_or_init(|| AtomicU32::new(rand::random::<u32>() & 0x00ff_ffff))
            .fetch_add(1, Ordering::Relaxed);
        let seconds = u32::try_from(chrono::Utc::now().timestamp().max(0)).unwrap_or(u32::MAX);
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(process_unique());
        bytes[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
        Self(bytes)
    }

    /// A new id for the current time whose last 8 bytes (64 bits) are random, so that it cannot be
    /// guessed from another id (a [`ObjectId::generate`] id differs from the one before it by one).
    /// Ids of one second sort in no particular order.
    pub fn unguessable() -> Self {
        let seconds = u32::try_from(chrono::Utc::now().timestamp().max(0)).unwrap_or(u32::MAX);
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..].copy_from_slice(&rand::random::<[u8; 8]>());
        Self(bytes)
    }

    /// Parses 24 hex characters (either case).
    ///
    /// # Errors
    /// [`IdError`] when the text has another length or a non-hex character.
    pub fn parse(text: &str) -> Result<Self, IdError> {
        if text.len() != 24 {
            return Err(IdError::Length(text.chars().count()));
        }
        let mut bytes = [0u8; 12];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(IdError::NotHex)?;
            let lo = hex_value(pair[1]).ok_or(IdError::NotHex)?;
            bytes[i] = (hi << 4) | lo;
        }
        Ok(Self(bytes))
    }

    /// The 12 raw bytes.
    pub fn bytes(&self) -> [u8; 12] {
        self.0
    }

    /// Builds an id from its 12 raw bytes (as a database driver hands them over).
    pub fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 24 lower-case hex digits written at once (this runs for every id of every response).
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 24];
        for (i, byte) in self.0.iter().enumerate() {
            text[2 * i] = DIGITS[usize::from(byte >> 4)];
            text[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        f.pad(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $generate:ident) => {
        $(#[$doc])*
        ///
        /// On the wire: a string of 24 lower-case hex characters.
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(ObjectId);

        impl $name {
            /// A new id for the current time (see the module's documentation).
            pub fn generate() -> Self {
                Self(ObjectId::$generate())
            }

            /// Parses 24 hex characters.
            ///
            /// # Errors
            /// [`IdError`] when the text is not an id.
            pub fn parse(text: &str) -> Result<Self, IdError> {
                ObjectId::parse(text).map(Self)
            }

            /// The underlying object id.
            pub fn object_id(&self) -> ObjectId {
                self.0
            }
        }

        impl From<ObjectId> for $name {
            fn from(id: ObjectId) -> Self {
                Self(id)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(&self.0)
            }
        }

        /// JSON Schema: what the deserialiser reads, 24 hex digits of either case (we write lower
        /// case).
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                "Id".into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": "^[0-9a-fA-F]{24}$",
                    "description": "24 hex digits (a MongoDB ObjectId's text; we write lower case)",
                })
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

typed_id!(
    /// The id of an event (a show on a date in a location).
    EventId,
    generate
);
typed_id!(
    /// The id of a location (a venue with halls).
    LocationId,
    generate
);
typed_id!(
    /// The id of a booking: [`ObjectId::unguessable`], so that no booking's id leads to another's.
    BookingId,
    unguessable
);
typed_id!(
    /// The id of a waitlist entry: [`ObjectId::unguessable`], as a booking's (its creation second
    /// first: entries of one second are in no particular order among themselves).
    WaitlistEntryId,
    unguessable
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_round_trips_through_its_hex_text() {
        let id = ObjectId::generate();
        assert_eq!(ObjectId::parse(&id.to_string()), Ok(id));
        assert_eq!(id.to_string().len(), 24);
    }

    #[test]
    fn booking_ids_share_nothing_but_their_second() {
        let ids: Vec<[u8; 12]> = (0..1000)
            .map(|_| BookingId::generate().object_id().bytes())
            .collect();
        let distinct: std::collections::HashSet<[u8; 8]> = ids
            .iter()
            .map(|id| id[4..].try_into().expect("8 bytes"))
            .collect();
        assert_eq!(distinct.len(), ids.len(), "random parts repeat");
        // Consecutive ids of a counter differ in their last bytes only; random ones differ in the
        // bytes right after the seconds as well (all equal by chance: 2^-8 per pair).
        let same_fifth_byte = ids.windows(2).filter(|w| w[0][4] == w[1][4]).count();
        assert!(
            same_fifth_byte < 50,
            "{same_fifth_byte} of 999 pairs share byte 4"
        );
        let event_ids: Vec<[u8; 12]> = (0..1000)
            .map(|_| EventId::generate().object_id().bytes())
            .collect();
        assert!(
            event_ids.windows(2).all(|w| w[0][4..9] == w[1][4..9]),
            "event ids keep the per-process bytes"
        );
    }

    #[test]
    fn upper_case_hex_is_accepted_and_shown_lower_case() {
        let id = ObjectId::parse("6B026AB2686C822A56B0FE36").expect("valid");
        assert_eq!(id.to_string(), "6b026ab2686c822a56b0fe36");
    }

    #[test]
    fn wrong_length_and_non_hex_are_rejected() {
        assert_eq!(ObjectId::parse("abc"), Err(IdError::Length(3)));
        assert_eq!(
            ObjectId::parse("zz026ab2686c822a56b0fe36"),
            Err(IdError::NotHex)
        );
        assert_eq!(
            ObjectId::parse("é6026ab2686c822a56b0fe3"),
            Err(IdError::NotHex)
        );
    }

    #[test]
    fn ids_generated_later_sort_later() {
        let a = ObjectId::generate();
        let b = ObjectId::generate();
        assert!(a < b);
    }
}
