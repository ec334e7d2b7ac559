//! An event's cancellation: what the event service stores with a called-off event, and the booking
//! service with its inventory.

use chrono::{DateTime, Utc};

/// An event's cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventCancellation {
    /// When, UTC (whole seconds).
    pub at: DateTime<Utc>,
    /// Why, as the organiser said it (at most [`MAX_REASON_CHARS`] characters; may be empty).
    pub reason: String,
}

/// Longest cancellation reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;
