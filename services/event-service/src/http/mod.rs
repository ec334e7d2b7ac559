//! The HTTP API: routes over the use cases, the wire formats and the service's error type.

use axum::response::{IntoResponse, Response};
use myevents_http::openapi::About;
use myevents_http::problem::Problem;
use myevents_store::RepositoryError;
use utoipa_axum::router::OpenApiRouter;

use crate::service::{CreateError, EventService};

mod events;
mod locations;
pub mod wire;

/// What the service's OpenAPI document says about it.
pub const ABOUT: About = About {
    title: "MyEvents event service",
    description: "Locations with their halls, and events at them. Reading is public; creating needs the organiser role. Every location and event created is announced to the other services (`locationCreated`, `eventCreated`; see the AsyncAPI document), and each event's `SeatsAvailable` follows the booking service's `eventBooked` and `bookingCancelled` messages. Errors are `application/problem+json` (RFC 9457).",
    port: 8181,
};

/// The service's API routes over its use cases, each with its OpenAPI description (the host splits
/// them into router and document, and adds the probes and the middleware).
pub fn routes() -> OpenApiRouter<EventService> {
    OpenApiRouter::new()
        .merge(events::routes())
        .merge(locations::routes())
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
