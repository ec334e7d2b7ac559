//! The outbox relay's settings.

use std::time::Duration;

use myevents_platform::config::{ConfigError, seconds_or, switch_or};

/// The outbox relay's settings: `OUTBOX_RELAY` (`on`/`off`, default `on`; `off` only to simulate a
/// crash between storing and publishing, in tests), `OUTBOX_POLL_INTERVAL` (default 1 second between
/// looks for messages a crashed process left behind, and between a standing-by relay's asks for the
/// claim) and `OUTBOX_CLAIM_LEASE` (default 15 seconds that a relay's claim on the outbox lasts unless
/// renewed: how long the replicas wait before taking over from a relay that died; keep it well above
/// the clock skew between them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Whether the relay runs.
    pub enabled: bool,
    /// Time between two looks when nothing woke it.
    pub poll_interval: Duration,
    /// How long a claim on the outbox lasts unless renewed (renewed after a third of it).
    pub claim_lease: Duration,
}

impl RelayConfig {
    /// Reads `OUTBOX_RELAY`, `OUTBOX_POLL_INTERVAL` and `OUTBOX_CLAIM_LEASE`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            enabled: switch_or("OUTBOX_RELAY", true)?,
            poll_interval: seconds_or("OUTBOX_POLL_INTERVAL", Duration::from_secs(1))?,
            claim_lease: seconds_or("OUTBOX_CLAIM_LEASE", Duration::from_secs(15))?,
        })
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval: Duration::from_secs(1),
            claim_lease: Duration::from_secs(15),
        }
    }
}
