//! The HTTP API: routes, shared state, the wire format and the service's error type.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use myevents_broker::ConsumerStatus;
use myevents_domain::validation::ValidationError;
use myevents_runtime::config::{CorsOrigins, ServerConfig};
use myevents_runtime::problem::Problem;
use myevents_store::{RepositoryError, StoreHealth};
use tokio::sync::Notify;

mod bookings;
pub mod wire;

/// What every handler can reach: cheap handles to the adapters and the booking rules.
#[derive(Clone)]
pub struct AppState {
    /// Set once the service is shutting down (readiness 503).
    pub draining: myevents_runtime::http::Draining,
    /// Seat inventory and bookings.
    pub repository: Arc<dyn myevents_store::BookingRepository>,
    /// Store readiness.
    pub store_health: Arc<dyn StoreHealth>,
    /// Whether the `eventCreated` consumer is attached.
    pub consumer: ConsumerStatus,
    /// Wakes the outbox relay after a booking.
    pub outbox_waker: Arc<Notify>,
    /// Most seats in one booking.
    pub max_seats_per_booking: u32,
    /// `Idempotency-Key` handling of `POST /events/{id}/bookings`.
    pub idempotency: myevents_runtime::idempotency::Idempotency,
}

/// The service's routes with the shared middleware.
pub fn router(state: AppState, cors: &CorsOrigins, server: &ServerConfig) -> Router {
    let api = Router::new()
        .merge(bookings::router())
        .with_state(state.clone());
    // Health, readiness and version: outside the API's request limit (see `with_common_layers`).
    let probes = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .merge(myevents_runtime::build_info::BuildInfo::current("booking-service").router())
        .with_state(state);
    myevents_runtime::http::with_common_layers(api, probes, cors, server)
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the store answers and the consumer is attached to the broker.
async fn readyz(State(state): State<AppState>) -> Response {
    myevents_runtime::http::store_and_consumer_readiness(
        state.store_health.as_ref(),
        &state.consumer,
        &state.draining,
    )
    .await
}

/// Every way a request can fail; the only place that maps failures to HTTP statuses.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request itself is unusable (media type, JSON syntax, query).
    #[error("bad request: {0:?}")]
    Request(Problem),
    /// No such resource (404); the text names it.
    #[error("not found: {0}")]
    NotFound(String),
    /// Well-formed input that breaks rules (422).
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The booking is someone else's (403).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Fewer seats remain than requested (409).
    #[error("only {remaining} seats remain, {requested} requested")]
    SoldOut {
        /// Seats that remain.
        remaining: u32,
        /// Seats requested.
        requested: u32,
    },
    /// The store failed.
    #[error(transparent)]
    Repository(#[from] RepositoryError),
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Request(problem)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            Self::Request(problem) => problem,
            Self::NotFound(what) => Problem::not_found(what),
            Self::Forbidden(what) => Problem::status(StatusCode::FORBIDDEN, what),
            Self::Invalid(error) => Problem::from(error),
            Self::SoldOut {
                remaining,
                requested,
            } => Problem::new(
                StatusCode::CONFLICT,
                "sold-out",
                "Not enough seats",
                format!("{requested} seats requested, {remaining} remain"),
            ),
            Self::Repository(error) => Problem::from(error),
        };
        problem.into_response()
    }
}
