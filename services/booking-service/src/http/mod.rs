//! The HTTP API: routes over the use cases, the wire format and the service's error type.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use myevents_domain::validation::ValidationError;
use myevents_http::openapi::About;
use myevents_http::problem::Problem;
use myevents_store::RepositoryError;
use utoipa_axum::router::OpenApiRouter;

use crate::service::{
    BookingService, CancelError, HoldError, ListError, PlaceError, WaitlistError,
};

mod bookings;
mod holds;
mod waitlist;
pub mod wire;

/// What the service's OpenAPI document says about it.
pub const ABOUT: About = About {
    title: "MyEvents booking service",
    description: "Bookings of seats of events, buyers' holds that keep seats for a while, and the seat inventory behind them: no seat is ever sold twice. Booking needs a caller; a booking is visible to the user who made it and to administrators, an event's list of bookings to the organiser who created it and to administrators. Bookings and cancellations are announced to the event service (`eventBooked`, `bookingCancelled`; see the AsyncAPI document); the events it sells come from `eventCreated`. Errors are `application/problem+json` (RFC 9457).",
    port: 8282,
};

/// The service's API routes over its use cases, each with its OpenAPI description (the host splits
/// them into router and document, and adds the probes and the middleware).
pub fn routes() -> OpenApiRouter<BookingService> {
    bookings::routes()
        .merge(holds::routes())
        .merge(waitlist::routes())
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
    /// Showing, confirming or releasing a hold failed.
    #[error(transparent)]
    Hold(#[from] HoldError),
    /// Joining, showing or leaving a waitlist failed.
    #[error(transparent)]
    Waitlist(#[from] WaitlistError),
    /// Listing bookings failed.
    #[error(transparent)]
    List(#[from] ListError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.problem().into_response()
    }
}

/// 410 `event-cancelled`, telling `error`.
fn event_cancelled(error: &dyn std::error::Error) -> Problem {
    Problem::new(
        StatusCode::GONE,
        "event-cancelled",
        "Event cancelled",
        error.to_string(),
    )
}

impl ApiError {
    /// The problem body this failure is answered with.
    fn problem(self) -> Problem {
        match self {
            Self::NotFound(what) => Problem::not_found(what),
            Self::Invalid(error) | Self::Place(PlaceError::Invalid(error)) => Problem::from(error),
            Self::Place(error @ PlaceError::EventNotFound(_)) => {
                Problem::not_found(error.to_string())
            }
            Self::Cancel(error @ CancelError::NotFound(_)) => Problem::not_found(error.to_string()),
            Self::Place(error @ PlaceError::EventCancelled(_)) => event_cancelled(&error),
            Self::Hold(error @ HoldError::EventCancelled(_)) => event_cancelled(&error),
            Self::Hold(error @ HoldError::Lapsed(_)) => Problem::new(
                StatusCode::GONE,
                "hold-lapsed",
                "Hold lapsed",
                error.to_string(),
            ),
            Self::Hold(error @ HoldError::NotFound(_)) => Problem::not_found(error.to_string()),
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
            | Self::Hold(HoldError::Store(error))
            | Self::List(ListError::Store(error)) => Problem::from(error),
            Self::Hold(HoldError::Place(error)) => Self::Place(error).problem(),
            Self::Waitlist(WaitlistError::Invalid(error)) => Problem::from(error),
            Self::Waitlist(error @ WaitlistError::EventCancelled(_)) => event_cancelled(&error),
            Self::Waitlist(
                error @ (WaitlistError::EventNotFound(_) | WaitlistError::NotFound(_)),
            ) => Problem::not_found(error.to_string()),
            Self::Waitlist(error @ WaitlistError::SeatsAvailable { .. }) => Problem::new(
                StatusCode::CONFLICT,
                "seats-available",
                "Seats on sale",
                error.to_string(),
            ),
            Self::Waitlist(error @ WaitlistError::Forbidden) => {
                Problem::status(StatusCode::FORBIDDEN, error.to_string())
            }
            Self::Waitlist(WaitlistError::Store(error)) => Problem::from(error),
        }
    }
}
