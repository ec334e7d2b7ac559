//! The HTTP API: routes, shared state, the wire formats and the service's error type.

use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use myevents_http::idempotency::Idempotency;
use myevents_http::problem::Problem;
use myevents_store::RepositoryError;
use utoipa_axum::router::OpenApiRouter;

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

/// The service's API routes, each with its OpenAPI description.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(events::routes())
        .merge(locations::routes())
}

/// The service's API routes (the host adds the probes and the middleware).
pub fn router(state: AppState) -> Router {
    let (router, _) = routes().split_for_parts();
    router
        .layer(Extension(state.idempotency.clone()))
        .with_state(state)
}

/// The OpenAPI description of [`router`]'s routes (the host completes it: see
/// [`myevents_http::openapi::finish`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().into_openapi()
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
