//! The [`authenticate`] middleware and the [`Caller`] extractor.

use axum::extract::{FromRequestParts, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::request::Parts;
use myevents_domain::access::Principal;

use super::authenticator::Authenticator;
use super::error::AuthError;
use crate::problem::Problem;
use crate::trace::trace_parent;

/// What the [`authenticate`] middleware found out about a request: the caller, or none (no
/// credentials in `jwt` mode). Read it with the [`Caller`] extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(pub Option<Principal>);

/// The subject of the request's verified bearer token, in the request's extensions only when a
/// token was verified (never for `X-User-Id`): what the rate limit may key by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject(pub String);

/// Marks an answer [`authenticate`] gave instead of the route because the request's credentials
/// were refused (in the answer's extensions), for [`crate::rate_limit::limit_refused_credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialsRefused;

/// Axum middleware: authenticates the request with the [`Authenticator`] of its state and puts the
/// [`Identity`] in its extensions, or answers 401 (`WWW-Authenticate: Bearer …`) for credentials
/// that do not verify, 400 for malformed ones — on every route, public ones too: a client with a
/// bad token learns it at once. Such an answer carries [`CredentialsRefused`] in its extensions.
pub async fn authenticate(
    State(authenticator): State<Authenticator>,
    mut request: Request,
    next: Next,
) -> Response {
    match authenticator.authenticate(request.headers()).await {
        Ok(identity) => {
            if authenticator.is_on()
                && let Identity(Some(principal)) = &identity
            {
                let subject = TokenSubject(principal.user().as_str().to_owned());
                request.extensions_mut().insert(subject);
            }
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        Err(mut refused) => {
            refused.extensions_mut().insert(CredentialsRefused);
            refused
        }
    }
}

/// Axum extractor of the authenticated caller ([`Principal`]) and the request's W3C
/// `traceparent`, for the messages its command stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Who calls.
    pub principal: Principal,
    /// The request's trace context (see [`crate::trace::trace_parent`]).
    pub trace_parent: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Response;

    /// # Errors
    /// 401 ([`AuthError::Missing`]) when the request carries no credentials; 500 when the route
    /// is not behind the [`authenticate`] middleware (a wiring mistake, logged).
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Response> {
        match parts.extensions.get::<Identity>() {
            Some(Identity(Some(principal))) => Ok(Self {
                principal: principal.clone(),
                trace_parent: trace_parent(&parts.headers),
            }),
            Some(Identity(None)) => Err(AuthError::Missing.into_response()),
            None => Err(
                Problem::internal("the route is not behind the authentication layer")
                    .into_response(),
            ),
        }
    }
}
