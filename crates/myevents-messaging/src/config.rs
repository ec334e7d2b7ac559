//! The outbox relay's settings.

use std::time::Duration;

use myevents_platform::config::{ConfigError, seconds_or, switch_or};

/// The outbox relay's settings: `OUTBOX_RELAY` (`on`/`off`, default `on`; `off` only to simulate a
/// crash between storing and publishing, in tests) and `OUTBOX_POLL_INTERVAL` (seconds between looks
/// for messages a crashed process left behind, default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayConfig {
    /// Whether the relay runs.
    pub enabled: bool,
    /// Time between two looks when nothing woke it.
    pub poll_interval: Duration,
}

impl RelayConfig {
    /// Reads `OUTBOX_RELAY` and `OUTBOX_POLL_INTERVAL`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_env() -> Result<Self, ConfigError> {
        Ok(Self {
            enabled: switch_or("OUTBOX_RELAY", true)?,
            poll_interval: seconds_or("OUTBOX_POLL_INTERVAL", Duration::from_secs(1))?,
        })
    }
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            poll_interval: Duration::from_secs(1),
        }
    }
}
