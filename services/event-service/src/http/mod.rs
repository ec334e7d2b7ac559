//! The HTTP API: routes over the use cases, the wire formats and the service's error type.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use myevents_domain::event::Event;
use myevents_domain::id::ObjectId;
use myevents_domain::location::Location;
use myevents_http::cache::{ReadCache, ReadRequest};
use myevents_http::json::json_response;
use myevents_http::openapi::About;
use myevents_http::paging::{Page, link_next};
use myevents_http::problem::Problem;
use myevents_store::PageRequest;
use myevents_store::RepositoryError;
use serde::Serialize;
use utoipa_axum::router::OpenApiRouter;

use crate::service::{ChangeError, CreateError, EventService, LocationChangeError};
use myevents_domain::event::ChangeRefused;
use myevents_domain::location::LocationChangeRefused;

mod events;
mod locations;
pub mod wire;

/// What the service's OpenAPI document says about it.
pub const ABOUT: About = About {
    title: "MyEvents event service",
    description: "Locations with their halls, and events at them. Reading is public; creating needs the organiser role, and changing one its creator (or an administrator). Every location and event created or changed is announced to the other services (`locationCreated`, `locationUpdated`, `locationDeleted`, `eventCreated`, `eventUpdated`, `eventCancelled`; see the AsyncAPI document), and each event's `SeatsAvailable` follows the booking service's `eventBooked` and `bookingCancelled` messages. Errors are `application/problem+json` (RFC 9457).",
    port: 8181,
};

/// What the handlers share: the use cases, and the answers of reads kept between changes.
#[derive(Clone)]
pub struct Api {
    /// The event and location use cases.
    pub events: EventService,
    /// The answers of `GET /events`, `GET /events/{id}` and `GET /locations`, kept until
    /// [`EventService::changes`] moves or for at most `READ_CACHE_MAX_AGE`.
    pub reads: ReadCache,
}

impl Api {
    /// The handlers' state over `events`, reads kept for at most `max_age`.
    pub fn new(events: EventService, max_age: std::time::Duration) -> Self {
        let counted = events.clone();
        Self {
            events,
            reads: ReadCache::new(max_age, move || counted.changes()),
        }
    }
}

/// What a listing pages by: an item's id.
trait Listed {
    /// The item's id.
    fn object_id(&self) -> ObjectId;
}

impl Listed for Event {
    fn object_id(&self) -> ObjectId {
        self.id.object_id()
    }
}

impl Listed for Location {
    fn object_id(&self) -> ObjectId {
        self.id.object_id()
    }
}

/// A listing's request: its page (`limit`, `after`; a 400 or 422 problem when they are refused)
/// and what its kept answer needs of it.
struct Listing {
    /// The page asked for.
    page: PageRequest,
    /// The key its answer is kept under, the client's headers (`If-None-Match`), the route.
    read: ReadRequest,
}

impl<S: Send + Sync> FromRequestParts<S> for Listing {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let Page(page) = Page::from_request_parts(parts, state).await?;
        let Ok(read) = ReadRequest::from_request_parts(parts, state).await;
        Ok(Self { page, read })
    }
}

/// The page `listing` asks for, which `read` reads (for `listing.page`), as the JSON array of the
/// items' wire bodies `B`, with `Link: rel="next"` when the page is full; kept in [`Api::reads`]
/// under the request's path and query, and revalidated by the client's `If-None-Match`.
///
/// # Errors
/// The store's failure.
async fn kept_page<T: Listed, B>(
    api: &Api,
    path: &'static str,
    listing: Listing,
    read: impl Future<Output = Result<Vec<T>, RepositoryError>>,
) -> Result<Response, ApiError>
where
    B: Serialize + for<'a> From<&'a T>,
{
    let Listing {
        page,
        read: request,
    } = listing;
    let answer = async {
        let items = read.await?;
        let body: Vec<B> = items.iter().map(B::from).collect();
        let mut response = json_response(StatusCode::OK, &body);
        link_next(
            &mut response,
            path,
            page,
            items.len(),
            items.last().map(Listed::object_id),
        );
        Ok(response)
    };
    api.reads.answer(&request, answer).await
}

/// The service's API routes over its use cases, each with its OpenAPI description (the host splits
/// them into router and document, and adds the probes and the middleware).
pub fn routes() -> OpenApiRouter<Api> {
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
    /// Changing an event failed.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// Changing or deleting a location failed.
    #[error(transparent)]
    LocationChange(#[from] LocationChangeError),
    /// The request is malformed (its problem body, 4xx).
    #[error("the request was refused")]
    Request(Problem),
    /// Nothing stored under the id or name in the path (404); the text says what was looked for.
    #[error("{0}")]
    Missing(String),
    /// Reading the store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

impl From<Problem> for ApiError {
    fn from(problem: Problem) -> Self {
        Self::Request(problem)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = match self {
            Self::Create(CreateError::Invalid(error)) => Problem::from(error),
            Self::Create(error @ CreateError::Forbidden) => {
                Problem::status(StatusCode::FORBIDDEN, error.to_string())
            }
            Self::Missing(what) => Problem::not_found(what),
            Self::Store(error)
            | Self::Create(CreateError::Store(error))
            | Self::Change(ChangeError::Store(error))
            | Self::LocationChange(LocationChangeError::Store(error)) => Problem::from(error),
            Self::Change(ChangeError::Refused(ChangeRefused::Invalid(error))) => {
                Problem::from(error)
            }
            Self::Change(error @ ChangeError::NotFound(_)) => Problem::not_found(error.to_string()),
            Self::Change(error @ ChangeError::Forbidden) => {
                Problem::status(StatusCode::FORBIDDEN, error.to_string())
            }
            Self::Change(error @ ChangeError::Stale) => {
                Problem::status(StatusCode::PRECONDITION_FAILED, error.to_string())
            }
            Self::Change(error @ (ChangeError::Refused(_) | ChangeError::Contended(_))) => {
                Problem::status(StatusCode::CONFLICT, error.to_string())
            }
            Self::LocationChange(LocationChangeError::Refused(LocationChangeRefused::Invalid(
                error,
            ))) => Problem::from(error),
            Self::LocationChange(error @ LocationChangeError::NotFound(_)) => {
                Problem::not_found(error.to_string())
            }
            Self::LocationChange(error @ LocationChangeError::Forbidden) => {
                Problem::status(StatusCode::FORBIDDEN, error.to_string())
            }
            Self::LocationChange(error @ LocationChangeError::Stale) => {
                Problem::status(StatusCode::PRECONDITION_FAILED, error.to_string())
            }
            Self::LocationChange(
                error @ (LocationChangeError::Refused(_)
                | LocationChangeError::InUse(_)
                | LocationChangeError::Contended(_)),
            ) => Problem::status(StatusCode::CONFLICT, error.to_string()),
            Self::Request(problem) => problem,
        };
        problem.into_response()
    }
}
