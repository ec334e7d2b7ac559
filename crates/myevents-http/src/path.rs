//! Typed path segments: an id in the URL that does not parse names no resource, so it answers 404
//! (as an unknown id would), never 400.

use std::str::FromStr;

use axum::extract::{FromRequestParts, Path};
use http::request::Parts;

use crate::problem::Problem;

/// Axum extractor of a route's one path parameter as `T` (e.g. `EventId` from `/events/{id}`).
///
/// # Errors
/// 404 naming the path when the segment is not a `T`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPath<T>(pub T);

impl<S: Send + Sync, T: FromStr + Send> FromRequestParts<S> for IdPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let parsed = match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(text)) => text.parse().ok(),
            Err(_) => None,
        };
        parsed
            .map(Self)
            .ok_or_else(|| Problem::not_found(format!("no resource at {}", parts.uri.path())))
    }
}
