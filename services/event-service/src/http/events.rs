//! `/events`: create, read (by id, by name), list. Each handler extracts, calls a use case of
//! [`EventService`](crate::service::EventService) and maps the result.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use myevents_domain::event::Event;
use myevents_domain::id::{EventId, LocationId};
use myevents_http::auth::Caller;
use myevents_http::idempotency::Reserved;
use myevents_http::json::{JsonBody, json_response};
use myevents_http::paging::{Page, link_next};
use myevents_http::path::IdPath;
use myevents_http::server::created;

use super::wire::{EventBody, EventInput, LocationInput};
use super::{ApiError, AppState};
use crate::service::{CreateError, CreateEvent, EventLocation};

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let keys = from_fn_with_state(
        state.idempotency.route::<(EventId, LocationId)>(),
        myevents_http::idempotency::middleware,
    );
    Router::new()
        .route("/events", post(create).route_layer(keys).get(list))
        .route("/events/{id}", get(read))
        .route("/events/id/{id}", get(read))
        .route("/events/name/{name}", get(read_by_name))
}

fn event_answer(event: Option<Event>, what: impl FnOnce() -> String) -> Result<Response, ApiError> {
    let event = event.ok_or_else(|| ApiError::Missing(what()))?;
    Ok(json_response(StatusCode::OK, &EventBody::from(&event)))
}

/// `POST /events`, for organisers, at most once per `Idempotency-Key` (see [`myevents_http::idempotency`]). A key
/// reserves both the event's id and that of the location it may describe inline, so a resumed
/// request finds what an interrupted one stored.
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    reserved: Reserved<(EventId, LocationId)>,
    JsonBody(input): JsonBody<EventInput>,
) -> Result<Response, ApiError> {
    let (draft, location) = input.into_parts();
    let location = location
        .map_or(
            Ok(EventLocation::Missing),
            LocationInput::into_event_location,
        )
        .map_err(CreateError::from)?;
    let command = CreateEvent {
        ids: reserved.id,
        resumed: reserved.resumed,
        draft,
        location,
        by: caller.principal,
        trace_parent: caller.trace_parent,
    };
    let event = state.events.create_event(command).await?;
    Ok(created(
        &format!("/events/{}", event.id),
        &EventBody::from(&event),
    ))
}

async fn read(
    State(state): State<AppState>,
    IdPath(id): IdPath<EventId>,
) -> Result<Response, ApiError> {
    event_answer(state.events.event(id).await?, || {
        format!("no event with id {id}")
    })
}

async fn read_by_name(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    event_answer(state.events.event_named(&name).await?, || {
        format!("no event named {name:?}")
    })
}

async fn list(State(state): State<AppState>, Page(page): Page) -> Result<Response, ApiError> {
    let events = state.events.events(page).await?;
    let last = events.last().map(|e| e.id.object_id());
    let body: Vec<EventBody> = events.iter().map(EventBody::from).collect();
    let mut response = json_response(StatusCode::OK, &body);
    link_next(&mut response, "/events", page, events.len(), last);
    Ok(response)
}
