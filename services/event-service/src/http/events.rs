//! `/events`: create, read (by id, by name), list. Each handler extracts, calls a use case of
//! [`EventService`](crate::service::EventService) and maps the result.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::middleware::from_fn;
use axum::response::Response;
use myevents_domain::event::Event;
use myevents_domain::id::{EventId, LocationId};
use myevents_http::auth::Caller;
use myevents_http::cache::request_key;
use myevents_http::idempotency::Reserved;
use myevents_http::json::created;
use myevents_http::json::{JsonBody, json_response};
use myevents_http::paging::{PageQuery, PageRefused};
use myevents_http::path::IdPath;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{EventBody, EventInput, LocationInput};
use super::{Api, ApiError, Listing, kept_page};
use crate::service::{CreateError, CreateEvent, EventLocation};

pub(crate) fn routes() -> OpenApiRouter<Api> {
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

use myevents_http::cache::{IfNoneMatch, NotModified};
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
    State(Api { events, .. }): State<Api>,
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

/// The answers of a read of one event by its id.
#[derive(utoipa::IntoResponses)]
#[expect(
    dead_code,
    clippy::large_enum_variant,
    reason = "it only describes the answers, which the handler builds"
)]
enum EventRead {
    /// The event.
    #[response(status = 200, description = "The event", headers(("ETag" = String)))]
    Found(EventBody),
    /// No event with this id.
    #[response(status = 404, description = "No event with this id")]
    Missing,
    /// The client's copy is still the answer.
    #[response(status = 304, description = "Not modified: `If-None-Match` names the answer's `ETag`",
        headers(("ETag" = String)))]
    NotModified,
}

/// One event.
#[utoipa::path(get, path = "/events/{id}", operation_id = "getEvent", tag = "events",
    params(("id" = myevents_http::openapi::Id, Path, description = "The event's id"), IfNoneMatch),
    responses(EventRead))]
async fn read(
    State(api): State<Api>,
    IdPath(id): IdPath<EventId>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let read = async {
        event_answer(api.events.event(id).await?, || {
            format!("no event with id {id}")
        })
    };
    api.reads.answer(request_key(&uri), &headers, read).await
}

/// One event (the reference's path for `GET /events/{id}`).
#[utoipa::path(get, path = "/events/id/{id}", operation_id = "getEventByIdPath", tag = "events",
    params(("id" = myevents_http::openapi::Id, Path, description = "The event's id"), IfNoneMatch),
    responses(EventRead))]
async fn read_by_id_path(
    api: State<Api>,
    id: IdPath<EventId>,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    read(api, id, uri, headers).await
}

/// One event, by its exact name.
#[utoipa::path(get, path = "/events/name/{name}", operation_id = "getEventByName", tag = "events",
    params(("name" = String, Path, description = "The event's name")),
    responses(
        (status = 200, description = "The event", body = EventBody),
        (status = 404, description = "No event with this name"),
    ))]
async fn read_by_name(
    State(Api { events, .. }): State<Api>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    event_answer(events.event_named(&name).await?, || {
        format!("no event named {name:?}")
    })
}

/// Events, oldest first, a page at a time.
#[utoipa::path(get, path = "/events", operation_id = "listEvents", tag = "events",
    params(PageQuery, IfNoneMatch),
    responses(
        (status = 200, description = "A page of events", body = Vec<EventBody>,
            headers(("Link" = String), ("ETag" = String))),
        PageRefused,
        NotModified,
    ))]
async fn list(State(api): State<Api>, listing: Listing) -> Result<Response, ApiError> {
    let read = api.events.events(listing.page);
    kept_page::<_, EventBody>(&api, "/events", listing, read).await
}
