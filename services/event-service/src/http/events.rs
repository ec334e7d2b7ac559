//! `/events`: create, read (by id, by name), list. Each handler extracts, calls a use case of
//! [`EventService`](crate::service::EventService) and maps the result.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::Response;
use myevents_domain::event::Event;
use myevents_domain::id::{EventId, LocationId};
use myevents_http::auth::Caller;
use myevents_http::idempotency::Reserved;
use myevents_http::json::created;
use myevents_http::json::{JsonBody, json_response};
use myevents_http::paging::{Page, PageQuery, link_next};
use myevents_http::path::IdPath;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::wire::{EventBody, EventInput, LocationInput};
use crate::service::{CreateError, CreateEvent, EventLocation, EventService};

pub(crate) fn routes() -> OpenApiRouter<EventService> {
    let (schemas, paths, create) = routes!(create);
    let create = create.route_layer(from_fn(
        myevents_http::idempotency::middleware::<(EventId, LocationId)>,
    ));
    OpenApiRouter::new()
        .routes((schemas, paths, create))
        .routes(routes!(list))
        .routes(routes!(read))
        .routes(routes!(read_by_id_path))
        .routes(routes!(read_by_name))
}

use myevents_http::openapi::IDEMPOTENCY_KEY_DOC;

fn event_answer(event: Option<Event>, what: impl FnOnce() -> String) -> Result<Response, ApiError> {
    let event = event.ok_or_else(|| ApiError::Missing(what()))?;
    Ok(json_response(StatusCode::OK, &EventBody::from(&event)))
}

/// Create an event (organisers).
///
/// At a stored location (`Location: {"ID": ...}`) or at a new one the body describes (created with
/// it, and announced as `locationCreated`). Announced as `eventCreated`; bookable once the booking
/// service has read that message (milliseconds). At most once per `Idempotency-Key`: a key
/// reserves both the event's id and that of the location it may describe inline, so a resumed
/// request finds what an interrupted one stored.
#[utoipa::path(post, path = "/events", operation_id = "createEvent", tag = "events",
    request_body(content = EventInput, description = "The event; keys match case-insensitively, unknown keys are ignored. Read as JSON whatever the `Content-Type` (`text/plain` and form types too, as the reference frontend sends them), except other media types (415).",
        example = json!({"Name": "opera aida", "Duration": 120, "StartDate": 1_768_000_000, "EndDate": 1_768_007_200,
            "Location": {"ID": "6b026aaf686c822a56b0fe35"}, "Hall": "A"})),
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY_KEY_DOC,
            pattern = r#"^("[ -~]{1,255}"|[!#-~]([ -~]{0,253}[!-~])?)$"#)),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 201, description = "Created", body = EventBody,
            headers(("Location" = String, description = "`/events/{id}` of the new event"),
                ("Idempotent-Replayed" = String)),
            links(
                ("GetEvent" = (operation_id = "getEvent", parameters(("id" = "$response.body#/ID")))),
                ("GetEventByIdPath" = (operation_id = "getEventByIdPath", parameters(("id" = "$response.body#/ID")))),
                ("GetEventByName" = (operation_id = "getEventByName", parameters(("name" = "$response.body#/Name")))),
            )),
        (status = 403, description = "The caller is not an organiser"),
        (status = 409, description = "A request with this `Idempotency-Key` is still in progress (`Retry-After`)"),
        (status = 422, description = "Invalid fields (one entry each in `errors`; `Location.ID` when no location has that id), or an `Idempotency-Key` used for another request"),
    ))]
async fn create(
    State(events): State<EventService>,
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
    let event = events.create_event(command).await?;
    Ok(created(
        &format!("/events/{}", event.id),
        &EventBody::from(&event),
    ))
}

/// One event.
#[utoipa::path(get, path = "/events/{id}", operation_id = "getEvent", tag = "events",
    params(("id" = myevents_http::openapi::Id, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = EventBody),
        (status = 404, description = "No event with this id"),
    ))]
async fn read(
    State(events): State<EventService>,
    IdPath(id): IdPath<EventId>,
) -> Result<Response, ApiError> {
    event_answer(events.event(id).await?, || format!("no event with id {id}"))
}

/// One event (the reference's path for `GET /events/{id}`).
#[utoipa::path(get, path = "/events/id/{id}", operation_id = "getEventByIdPath", tag = "events",
    params(("id" = myevents_http::openapi::Id, Path, description = "The event's id")),
    responses(
        (status = 200, description = "The event", body = EventBody),
        (status = 404, description = "No event with this id"),
    ))]
async fn read_by_id_path(
    events: State<EventService>,
    id: IdPath<EventId>,
) -> Result<Response, ApiError> {
    read(events, id).await
}

/// One event, by its exact name.
#[utoipa::path(get, path = "/events/name/{name}", operation_id = "getEventByName", tag = "events",
    params(("name" = String, Path, description = "The event's name")),
    responses(
        (status = 200, description = "The event", body = EventBody),
        (status = 404, description = "No event with this name"),
    ))]
async fn read_by_name(
    State(events): State<EventService>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    event_answer(events.event_named(&name).await?, || {
        format!("no event named {name:?}")
    })
}

/// Events, oldest first, a page at a time.
#[utoipa::path(get, path = "/events", operation_id = "listEvents", tag = "events",
    params(PageQuery),
    responses(
        (status = 200, description = "A page of events", body = Vec<EventBody>,
            headers(("Link" = String))),
        (status = 422, description = "`limit` outside 1-1000 or `after` not an id"),
    ))]
async fn list(State(events): State<EventService>, Page(page): Page) -> Result<Response, ApiError> {
    let events = events.events(page).await?;
    let last = events.last().map(|e| e.id.object_id());
    let body: Vec<EventBody> = events.iter().map(EventBody::from).collect();
    let mut response = json_response(StatusCode::OK, &body);
    link_next(&mut response, "/events", page, events.len(), last);
    Ok(response)
}
