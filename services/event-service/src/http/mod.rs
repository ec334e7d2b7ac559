//! The HTTP API: routes, shared state, the wire formats and the service's error type.

use axum::Router;
use axum::response::{IntoResponse, Response};
use myevents_http::idempotency::Idempotency;
use myevents_http::problem::Problem;
use myevents_store::RepositoryError;

use crate::service::{CreateError, EventService};

mod events;
mod locations;
pub mod wire;

/// What every handler can reach: the use cases and the idempotency keys of the `POST` routes.
#[derive(Clone)]
pub struct AppState {
    /// The event and location use cases.
    pub events: EventService,
    /// `Idempotency-Key` handling of the `POST`s.
    pub idempotency: Idempotency,
}

/// The service's API routes (the host adds the probes and the middleware).
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(events::router(&state))
        .merge(locations::router(&state))
        .with_state(state)
}

/// How an event-service request fails: the one place that maps its failures to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Creating a location or an event failed (422 for invalid input).
    #[error(transparent)]
    Create(#[from] CreateError),
    /// Nothing stored under the id or name in the path (404); the text says what was looked for.
    #[error("{0}")]
    Missing(String),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            Self::Create(CreateError::Invalid(error)) => Problem::from(error),
            Self::Create(error @ CreateError::Forbidden) => {
                Problem::status(axum::http::StatusCode::FORBIDDEN, error.to_string())
            }
            Self::Missing(what) => Problem::not_found(what),
            Self::Store(error) | Self::Create(CreateError::Store(error)) => Problem::from(error),
        };
        problem.into_response()
    }
}
