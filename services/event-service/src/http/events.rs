//! `/events`: create, read (by id, by name), list.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use myevents_domain::event::Event;
use myevents_domain::id::{EventId, LocationId};
use myevents_domain::location::Location;
use myevents_domain::messages::{DomainEvent, EventCreated, OutboxMessage};
use myevents_domain::validation::ValidationError;
use myevents_runtime::idempotency::user_of;
use myevents_runtime::json::parse_body;

use super::locations::store_location;
use super::wire::{EventBody, EventInput};
use super::{ApiError, AppState};
use myevents_runtime::http::{created, trace_parent};
use myevents_runtime::paging::{PageQuery, link_next, page_request};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/events", get(list).post(create))
        .route("/events/{id}", get(read))
        .route("/events/id/{id}", get(read))
        .route("/events/name/{name}", get(read_by_name))
}

/// `POST /events`, at most once per `Idempotency-Key` (see [`myevents_runtime::idempotency`]). The
/// resource id of a key names both the event and the location it may create inline
/// (`<event id>/<location id>`), so a resumed request finds what an interrupted one stored.
async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let user = user_of(&headers);
    let fresh_id = format!("{}/{}", EventId::generate(), LocationId::generate());
    let (state_ref, request_headers, request_body) = (&state, &headers, &body);
    state
        .idempotency
        .run(
            &user,
            &headers,
            &Method::POST,
            "/events",
            &body,
            fresh_id,
            |ids, resumed| async move {
                store_event(state_ref, request_headers, request_body, &ids, resumed)
                    .await
                    .unwrap_or_else(IntoResponse::into_response)
            },
        )
        .await
}

fn event_created(event: &Event) -> Response {
    created(&format!("/events/{}", event.id), &EventBody::from(event))
}

async fn store_event(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    ids: &str,
    resumed: bool,
) -> Result<Response, ApiError> {
    let malformed = || {
        ApiError::Repository(myevents_store::RepositoryError::Unexpected(format!(
            "stored idempotency key holds malformed ids {ids:?}"
        )))
    };
    let (event_id, location_id) = ids.split_once('/').ok_or_else(malformed)?;
    let event_id = EventId::parse(event_id).map_err(|_| malformed())?;
    let location_id = LocationId::parse(location_id).map_err(|_| malformed())?;
    if resumed && let Some(existing) = state.events.get(event_id).await? {
        return Ok(event_created(&existing));
    }
    let input: EventInput = parse_body(headers, body)?;
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
                .validate(location_id, "Location.")?,
            true,
        ),
    };
    let event: Event = draft.validate(event_id, location)?;
    let stored_before = resumed && state.locations.get(location_id).await?.is_some();
    if is_new && !stored_before {
        store_location(state, &event.location, trace_parent(headers)).await?;
    }
    let announce = OutboxMessage::new(DomainEvent::EventCreated(EventCreated::from_event(&event)))
        .in_trace(trace_parent(headers));
    state.events.insert(&event, &announce).await?;
    state.outbox_waker.notify_one();
    Ok(event_created(&event))
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
