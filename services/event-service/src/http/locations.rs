//! `/locations`: create, read, list.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use myevents_domain::id::LocationId;
use myevents_domain::location::Location;
use myevents_domain::messages::{DomainEvent, LocationCreated, OutboxMessage};
use myevents_runtime::idempotency::user_of;
use myevents_runtime::json::parse_body;

use super::wire::{LocationBody, LocationInput};
use super::{ApiError, AppState};
use myevents_runtime::http::{created, trace_parent};
use myevents_runtime::paging::{PageQuery, link_next, page_request};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/locations", get(list).post(create))
        .route("/locations/{id}", get(read))
}

/// Stores a validated location with its `locationCreated` in the outbox, and wakes the relay.
pub(crate) async fn store_location(
    state: &AppState,
    location: &Location,
    trace: Option<String>,
) -> Result<(), ApiError> {
    let announce = OutboxMessage::new(DomainEvent::LocationCreated(
        LocationCreated::from_location(location),
    ))
    .in_trace(trace);
    state.locations.insert(location, &announce).await?;
    state.outbox_waker.notify_one();
    Ok(())
}

/// `POST /locations`, at most once per `Idempotency-Key` (see [`myevents_runtime::idempotency`]).
async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let user = user_of(&headers);
    let fresh_id = LocationId::generate().to_string();
    let (state_ref, request_headers, request_body) = (&state, &headers, &body);
    state
        .idempotency
        .run(
            &user,
            &headers,
            &Method::POST,
            "/locations",
            &body,
            fresh_id,
            |id, resumed| async move {
                create_location(state_ref, request_headers, request_body, &id, resumed)
                    .await
                    .unwrap_or_else(IntoResponse::into_response)
            },
        )
        .await
}

fn location_created(location: &Location) -> Response {
    created(
        &format!("/locations/{}", location.id),
        &LocationBody::from(location),
    )
}

async fn create_location(
    state: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    id: &str,
    resumed: bool,
) -> Result<Response, ApiError> {
    let location_id = LocationId::parse(id).map_err(|_| {
        ApiError::Repository(myevents_store::RepositoryError::Unexpected(format!(
            "stored idempotency key holds a malformed location id {id:?}"
        )))
    })?;
    if resumed && let Some(existing) = state.locations.get(location_id).await? {
        return Ok(location_created(&existing));
    }
    let input: LocationInput = parse_body(headers, body)?;
    let location = input.into_draft().validate(location_id, "")?;
    store_location(state, &location, trace_parent(headers)).await?;
    Ok(location_created(&location))
}

async fn read(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no location with id {id:?}"));
    let location_id = LocationId::parse(&id).map_err(|_| not_found())?;
    let location = state
        .locations
        .get(location_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(LocationBody::from(&location)).into_response())
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let page = page_request(query)?;
    let locations = state.locations.list(page).await?;
    let last = locations.last().map(|l| l.id.object_id());
    let body: Vec<LocationBody> = locations.iter().map(LocationBody::from).collect();
    let mut response = Json(body).into_response();
    link_next(&mut response, "/locations", page, locations.len(), last);
    Ok(response)
}
