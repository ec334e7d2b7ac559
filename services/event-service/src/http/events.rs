//! `/events`: create, read (by id, by name), list.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use myevents_domain::event::Event;
use myevents_domain::id::{EventId, LocationId};
use myevents_domain::location::Location;
use myevents_domain::messages::{DomainEvent, EventCreated, OutboxMessage};
use myevents_domain::validation::ValidationError;
use myevents_runtime::json::parse_body;

use super::locations::store_location;
use super::wire::{EventBody, EventInput};
use super::{ApiError, AppState};
use myevents_runtime::http::created;
use myevents_runtime::paging::{PageQuery, link_next, page_request};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list).post(create))
        .route("/events/{id}", get(read))
        .route("/events/id/{id}", get(read))
        .route("/events/name/{name}", get(read_by_name))
}

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: EventInput = parse_body(&headers, &body)?;
    let (draft, location_input) = input.into_parts();
    let Some(location_input) = location_input else {
        return Err(ValidationError::field(
            "Location",
            "is required: give Location.ID of a stored location, or a whole location",
        )
        .into());
    };
    // Either a stored location by id, or a new one described inline (stored with the event).
    let (location, is_new): (Location, bool) = match location_input.reference("Location.")? {
        Some(id) => {
            let stored = state.locations.get(id).await?.ok_or_else(|| {
                ValidationError::field("Location.ID", format!("no location with id {id}"))
            })?;
            (stored, false)
        }
        None => (
            location_input
                .into_draft()
                .validate(LocationId::generate(), "Location.")?,
            true,
        ),
    };
    let event: Event = draft.validate(EventId::generate(), location)?;
    if is_new {
        store_location(&state, &event.location).await?;
    }
    let announce = OutboxMessage::new(DomainEvent::EventCreated(EventCreated::from_event(&event)));
    state.events.insert(&event, &announce).await?;
    state.outbox_waker.notify_one();
    Ok(created(
        &format!("/events/{}", event.id),
        &EventBody::from(&event),
    ))
}

async fn read(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no event with id {id:?}"));
    let event_id = EventId::parse(&id).map_err(|_| not_found())?;
    let event = state.events.get(event_id).await?.ok_or_else(not_found)?;
    Ok(Json(EventBody::from(&event)).into_response())
}

async fn read_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let event = state
        .events
        .find_by_name(&name)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event named {name:?}")))?;
    Ok(Json(EventBody::from(&event)).into_response())
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = page_request(query)?;
    let events = state.events.list(page).await?;
    let last = events.last().map(|e| e.id.object_id());
    let body: Vec<EventBody> = events.iter().map(EventBody::from).collect();
    let mut response = Json(body).into_response();
    link_next(&mut response, "/events", page, events.len(), last);
    Ok(response)
}
