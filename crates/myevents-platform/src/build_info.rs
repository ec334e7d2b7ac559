//! What build a binary is: its version and git commit, logged at start-up and served at
//! `GET /version`.
//!
//! The version is the workspace's (`Cargo.toml`); the commit comes from the environment variable
//! `MYEVENTS_GIT_COMMIT` at compile time (the container build sets it from its `GIT_COMMIT` build
//! argument), `unknown` when it was not set.
//!
//! ```
//! let build = myevents_platform::build_info::BuildInfo::current("event-service");
//! assert_eq!(build.version, env!("CARGO_PKG_VERSION"));
//! ```

/// A binary's build, as served at `GET /version`:
/// `{"service":"event-service","version":"0.1.0","commit":"<40 hex or unknown>"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BuildInfo {
    /// The service's name (`event-service`, `booking-service`, `myevents`).
    #[schema(value_type = String, example = "event-service")]
    pub service: &'static str,
    /// The package version (semantic versioning).
    #[schema(value_type = String, example = "0.1.0")]
    pub version: &'static str,
    /// The git commit the binary was built from, or `unknown`.
    #[schema(value_type = String, pattern = "^([0-9a-f]{40}|unknown)$")]
    pub commit: &'static str,
}

impl BuildInfo {
    /// This binary's build, for the service `service`.
    pub fn current(service: &'static str) -> Self {
        Self {
            service,
            version: env!("CARGO_PKG_VERSION"),
            commit: match option_env!("MYEVENTS_GIT_COMMIT") {
                Some(commit) if !commit.is_empty() => commit,
                _ => "unknown",
            },
        }
    }
}
