//! `/locations`: create, read, list. Each handler extracts, calls a use case of
//! [`EventService`](crate::service::EventService) and maps the result.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use myevents_domain::id::LocationId;
use myevents_http::auth::Caller;
use myevents_http::idempotency::Reserved;
use myevents_http::json::{JsonBody, json_response};
use myevents_http::paging::{Page, link_next};
use myevents_http::path::IdPath;
use myevents_http::server::created;

use super::wire::{LocationBody, LocationInput};
use super::{ApiError, AppState};
use crate::service::CreateLocation;

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let keys = from_fn_with_state(
        state.idempotency.route::<LocationId>(),
        myevents_http::idempotency::middleware,
    );
    Router::new()
        .route("/locations", post(create).route_layer(keys).get(list))
        .route("/locations/{id}", get(read))
}

/// `POST /locations`, for organisers, at most once per `Idempotency-Key` (see [`myevents_http::idempotency`]).
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    reserved: Reserved<LocationId>,
    JsonBody(input): JsonBody<LocationInput>,
) -> Result<Response, ApiError> {
    let command = CreateLocation {
        id: reserved.id,
        resumed: reserved.resumed,
        draft: input.into_draft(),
        by: caller.principal,
        trace_parent: caller.trace_parent,
    };
    let location = state.events.create_location(command).await?;
    let path = format!("/locations/{}", location.id);
    Ok(created(&path, &LocationBody::from(&location)))
}

async fn read(
    State(state): State<AppState>,
    IdPath(id): IdPath<LocationId>,
) -> Result<Response, ApiError> {
    let location = state.events.location(id).await?;
    let location =
        location.ok_or_else(|| ApiError::Missing(format!("no location with id {id}")))?;
    Ok(json_response(
        StatusCode::OK,
        &LocationBody::from(&location),
    ))
}

async fn list(State(state): State<AppState>, Page(page): Page) -> Result<Response, ApiError> {
    let locations = state.events.locations(page).await?;
    let last = locations.last().map(|l| l.id.object_id());
    let body: Vec<LocationBody> = locations.iter().map(LocationBody::from).collect();
    let mut response = json_response(StatusCode::OK, &body);
    link_next(&mut response, "/locations", page, locations.len(), last);
    Ok(response)
}
