//! Seat counts.

use serde::{Deserialize, Serialize};

/// A number of seats (hall capacity, event capacity, remaining seats, seats in one booking).
/// Never negative by construction.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(transparent)]
pub struct SeatCount(u32);

impl SeatCount {
    /// The most seats a hall, a location or an event may have: 2,147,483,647, what the documents'
    /// `int32` (OpenAPI `format: int32`) can say.
    pub const MAX_ON_SALE: u32 = 2_147_483_647;

    /// `seats` seats.
    pub const fn new(seats: u32) -> Self {
        Self(seats)
    }

    /// The number of seats.
    pub const fn get(self) -> u32 {
        self.0
    }

    /// True for zero seats.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The sum, or `None` on overflow of `u32`.
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).map(Self)
    }

    /// The difference, or `None` when `other` is larger (a count never goes below zero).
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.0.checked_sub(other.0).map(Self)
    }
}

impl std::fmt::Display for SeatCount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}
