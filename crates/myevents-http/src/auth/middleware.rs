//! The [`AuthenticateLayer`] middleware and the [`Caller`] extractor.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::{FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use http::request::Parts;
use myevents_domain::access::Principal;
use tower::ServiceExt;

use super::authenticator::{Authenticator, Credentials};
use super::error::AuthError;
use crate::problem::Problem;
use crate::trace::trace_parent;

/// What the [`AuthenticateLayer`] middleware found out about a request: the caller, or none (no
/// credentials in `jwt` mode). Read it with the [`Caller`] extractor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity(pub Option<Principal>);

/// The subject of the request's verified bearer token, in the request's extensions only when a
/// token was verified (never for `X-User-Id`): what the rate limit may key by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSubject(pub String);

/// Marks an answer [`AuthenticateLayer`] gave instead of the route because the request's credentials
/// were refused (in the answer's extensions), for [`crate::rate_limit::limit_refused_credentials`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CredentialsRefused;

/// Authentication in front of every API route: authenticates the request with its
/// [`Authenticator`] and puts the [`Identity`] in its extensions (and, for a verified token, its
/// [`TokenSubject`]), or answers 401 (`WWW-Authenticate: Bearer …`) for credentials that do not
/// verify, 400 for malformed ones — on every route, public ones too: a client with a bad token learns
/// it at once. Such an answer carries [`CredentialsRefused`] in its extensions. A request whose
/// caller is known without verifying a signature (no token, or authentication off) goes on at once,
/// without a future of its own.
#[derive(Debug, Clone)]
pub struct AuthenticateLayer(pub Authenticator);

impl<S> tower::Layer<S> for AuthenticateLayer {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Authenticate<S> {
        Authenticate {
            inner,
            authenticator: self.0.clone(),
        }
    }
}

/// See [`AuthenticateLayer`].
#[derive(Debug, Clone)]
pub struct Authenticate<S> {
    inner: S,
    authenticator: Authenticator,
}

/// The answer of [`Authenticate`]: the route's, or a refusal; boxed only when a token is verified.
type Authenticated<F> = Either<F, crate::Boxed>;

impl<S> tower::Service<Request> for Authenticate<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Authenticated<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let token = match self.authenticator.credentials(request.headers()) {
            Ok(Credentials::Known(identity)) => {
                request.extensions_mut().insert(identity);
                return Either::Left(self.inner.call(request));
            }
            Ok(Credentials::Token(token)) => token.to_owned(),
            Err(refused) => {
                let refused = refusal(refused.into_response());
                return Either::Right(Box::pin(std::future::ready(Ok(refused))));
            }
        };
        let (authenticator, inner) = (self.authenticator.clone(), self.inner.clone());
        Either::Right(Box::pin(async move {
            match authenticator.verify(&token).await {
                Ok(identity) => {
                    if let Identity(Some(principal)) = &identity {
                        let subject = TokenSubject(principal.user().as_str().to_owned());
                        request.extensions_mut().insert(subject);
                    }
                    request.extensions_mut().insert(identity);
                    inner.oneshot(request).await
                }
                Err(refused) => Ok(refusal(refused)),
            }
        }))
    }
}

/// `refused`, marked [`CredentialsRefused`].
fn refusal(mut refused: Response) -> Response {
    refused.extensions_mut().insert(CredentialsRefused);
    refused
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
    /// is not behind the [`AuthenticateLayer`] middleware (a wiring mistake, logged).
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
