//! Who calls: the `X-User-Id` header an API gateway sets to the authenticated user (the reference's
//! identity), with the request's trace, as one axum extractor.

use axum::extract::FromRequestParts;
use http::request::Parts;
use myevents_domain::booking::UserId;
use myevents_domain::validation::ValidationError;

use crate::problem::Problem;
use crate::server::trace_parent;

/// The header naming the caller (lower case, as `http` spells header names).
pub const USER_HEADER: &str = "x-user-id";

/// Axum extractor of the caller: the user `X-User-Id` names (`anonymous` without the header), and
/// the W3C `traceparent` of the request, for the messages its command stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The calling user.
    pub user: UserId,
    /// The request's trace context (see [`crate::server::trace_parent`]).
    pub trace_parent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    /// # Errors
    /// 422 naming `X-User-Id` when it is not visible ASCII or not a valid user id.
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let user = match parts.headers.get(USER_HEADER) {
            None => UserId::anonymous(),
            Some(value) => {
                let text = value
                    .to_str()
                    .map_err(|_| ValidationError::field("X-User-Id", "must be visible ASCII"))?;
                UserId::parse(text)?
            }
        };
        Ok(Self {
            user,
            trace_parent: trace_parent(&parts.headers),
        })
    }
}
