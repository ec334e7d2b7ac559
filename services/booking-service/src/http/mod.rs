//! The HTTP API: routes, shared state, the wire format and the service's error type.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use myevents_domain::validation::ValidationError;
use myevents_http::idempotency::Idempotency;
use myevents_http::problem::Problem;
use myevents_store::RepositoryError;
use utoipa_axum::router::OpenApiRouter;

use crate::service::{BookingService, CancelError, ListError, PlaceError};

mod bookings;
pub mod wire;

/// What every handler can reach: the use cases and the idempotency keys of the `POST` route.
#[derive(Clone)]
pub struct AppState {
    /// The booking use cases.
    pub bookings: BookingService,
    /// `Idempotency-Key` handling of `POST /events/{id}/bookings`.
    pub idempotency: Idempotency,
}

fn routes() -> OpenApiRouter<AppState> {
    bookings::routes()
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

/// Every way a request can fail; the only place that maps the service's failures to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such resource (404); the text names it.
    #[error("not found: {0}")]
    NotFound(String),
    /// Well-formed input that breaks rules (422).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Placing a booking failed.
    #[error(transparent)]
    Place(#[from] PlaceError),
    /// Cancelling a booking failed.
    #[error(transparent)]
    Cancel(#[from] CancelError),
    /// Listing bookings failed.
    #[error(transparent)]
    List(#[from] ListError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            Self::NotFound(what) => Problem::not_found(what),
            Self::Invalid(error) | Self::Place(PlaceError::Invalid(error)) => Problem::from(error),
            Self::Place(error @ PlaceError::EventNotFound(_)) => {
                Problem::not_found(error.to_string())
            }
            Self::Cancel(error @ CancelError::NotFound(_)) => Problem::not_found(error.to_string()),
            Self::Place(error @ PlaceError::SoldOut { .. }) => Problem::new(
                StatusCode::CONFLICT,
                "sold-out",
                "Not enough seats",
                error.to_string(),
            ),
            Self::Place(error @ PlaceError::Interrupted(_)) => Problem::unavailable(
                format!("{error}; retry with the same Idempotency-Key to finish it"),
                1,
            ),
            Self::List(error @ ListError::EventNotFound(_)) => {
                Problem::not_found(error.to_string())
            }
            Self::List(error @ ListError::Forbidden(_)) => {
                Problem::status(StatusCode::FORBIDDEN, error.to_string())
            }
            Self::Store(error)
            | Self::Place(PlaceError::Store(error))
            | Self::Cancel(CancelError::Store(error))
            | Self::List(ListError::Store(error)) => Problem::from(error),
        };
        problem.into_response()
    }
}
