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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct BuildInfo {
    /// The service's name (`event-service`, `booking-service`, `myevents`).
    pub service: &'static str,
    /// The package version (semantic versioning).
    pub version: &'static str,
    /// The git commit the binary was built from, or `unknown`.
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

    /// The `GET /version` route (JSON body as above).
    pub fn router<S: Clone + Send + Sync + 'static>(self) -> axum::Router<S> {
        axum::Router::new().route(
            "/version",
            axum::routing::get(move || async move { axum::Json(self) }),
        )
    }
}
