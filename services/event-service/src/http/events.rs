//! `/events`: create, read (by id, by name), list, change, cancel. Each handler extracts, calls a
//! use case of [`EventService`](crate::service::EventService) and maps the result.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::from_fn;
use axum::response::Response;
use myevents_domain::event::Event;
use myevents_domain::id::{EventId, LocationId};
use myevents_http::auth::Caller;
use myevents_http::cache::ReadRequest;
use myevents_http::idempotency::Reserved;
use myevents_http::json::created;
use myevents_http::json::{JsonBody, json_response};
use myevents_http::paging::{PageQuery, PageRefused};
use myevents_http::path::IdPath;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{CancellationInput, EventBody, EventInput, EventPatchInput, LocationInput};
use super::{Api, ApiError, Listing, kept_page};
use crate::service::{ChangeEvent, CreateError, CreateEvent, EventChange, EventLocation};

pub(crate) fn routes() -> OpenApiRouter<Api> {
    let (schemas, paths, create) = routes!(create);
    let create = create.route_layer(from_fn(
        myevents_http::idempotency::middleware::<(EventId, LocationId)>,
    ));
    OpenApiRouter::new()
        .routes((schemas, paths, create))
        .routes(routes!(list))
        .routes(routes!(read, change))
        .routes(routes!(cancel))
        .routes(routes!(read_by_id_path))
        .routes(routes!(read_by_name))
}

use myevents_http::cache::{IfMatch, IfNoneMatch, NotModified, etag_of, if_match};
use myevents_http::openapi::IDEMPOTENCY_KEY_DOC;

fn event_answer(event: Option<Event>, what: impl FnOnce() -> String) -> Result<Response, ApiError> {
    let event = event.ok_or_else(|| ApiError::Missing(what()))?;
    Ok(json_response(StatusCode::OK, &EventBody::from(&event)))
}

/// The `ETag` of `event`'s answer: what `GET /events/{id}` answers with for it.
fn event_etag(event: &Event) -> HeaderValue {
    etag_of(&serde_json::to_vec(&EventBody::from(event)).unwrap_or_default())
}

/// The changed event's answer: 200 with its body and `ETag`.
fn changed_answer(event: &Event) -> Response {
    let mut answer = json_response(StatusCode::OK, &EventBody::from(event));
    answer.headers_mut().insert(header::ETAG, event_etag(event));
    answer
}

/// The answers of a change of an event.
#[derive(utoipa::IntoResponses)]
#[expect(
    dead_code,
    clippy::large_enum_variant,
    reason = "it only describes the answers, which the handler builds"
)]
enum EventChanged {
    /// The event as changed.
    #[response(status = 200, description = "The event as changed", headers(("ETag" = String)))]
    Changed(EventBody),
    /// The caller is neither the event's organiser nor an administrator.
    #[response(
        status = 403,
        description = "The caller is neither the organiser who created the event nor an administrator"
    )]
    Forbidden,
    /// No event with this id.
    #[response(status = 404, description = "No event with this id")]
    Missing,
    /// The change conflicts with the event's state.
    #[response(
        status = 409,
        description = "The event is cancelled (it changes no more), the capacity asked for is below the seats booked, or other changes of the event kept coming first (try again)"
    )]
    Conflict,
    /// `If-Match` names another copy.
    #[response(
        status = 412,
        description = "`If-Match` names a copy of the event that is no longer the stored one: read it again (its `ETag`) and redo the change"
    )]
    PreconditionFailed,
    /// Invalid fields.
    #[response(
        status = 422,
        description = "Invalid fields (one entry each in `errors`)"
    )]
    Invalid,
}

/// Change an event (its organiser, or an administrator).
///
/// The fields given replace the stored ones; the others stay. The capacity grows, or shrinks down
/// to the seats booked. Announced as `eventUpdated`: the booking service moves the seats on sale by
/// the difference. With `If-Match` (the `ETag` of the copy read), nothing changes when someone
/// else changed the event since (412), so no change overwrites another unseen; `SeatsAvailable` is
/// part of the copy, so a booking in between asks for a fresh read too.
#[utoipa::path(patch, path = "/events/{id}", operation_id = "changeEvent", tag = "events",
    params(("id" = myevents_http::openapi::Id, Path, description = "The event's id"), IfMatch),
    request_body(content = EventPatchInput, description = "The fields to change; keys match case-insensitively, unknown keys are ignored.",
        example = json!({"Name": "opera tosca", "Capacity": 120})),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(EventChanged))]
async fn change(
    State(Api { events, .. }): State<Api>,
    IdPath(id): IdPath<EventId>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(input): JsonBody<EventPatchInput>,
) -> Result<Response, ApiError> {
    let command = ChangeEvent {
        id,
        change: EventChange::Edit(input.into()),
        by: caller.principal,
        trace_parent: caller.trace_parent,
    };
    let precondition = |stored: &Event| if_match(&headers, &event_etag(stored));
    let event = events.change_event(command, precondition).await?;
    Ok(changed_answer(&event))
}

/// Cancel an event (its organiser, or an administrator).
///
/// The event stays listed, with `CancelledAt` (and `CancellationReason`), refuses bookings (the
/// booking service answers 410) and changes (409), and has no seats on sale. Announced as
/// `eventCancelled`: the booking service cancels every booking of the event, each with its
/// reason, and sells none of the seats again. Cancelling a cancelled event answers it as it is.
/// `If-Match` as for a change.
#[utoipa::path(post, path = "/events/{id}/cancellation", operation_id = "cancelEvent", tag = "events",
    params(("id" = myevents_http::openapi::Id, Path, description = "The event's id"), IfMatch),
    request_body(content = CancellationInput, description = "Optional: why (keys match case-insensitively). An empty body gives no reason.",
        example = json!({"Reason": "the soloist is ill"})),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(EventChanged))]
async fn cancel(
    State(Api { events, .. }): State<Api>,
    IdPath(id): IdPath<EventId>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let input: CancellationInput = if body.iter().all(u8::is_ascii_whitespace) {
        myevents_http::json::accept_media_type(&headers)?;
        CancellationInput::default()
    } else {
        myevents_http::json::parse_body(&headers, &body)?
    };
    let command = ChangeEvent {
        id,
        change: EventChange::Cancel(input.reason()),
        by: caller.principal,
        trace_parent: caller.trace_parent,
    };
    let precondition = |stored: &Event| if_match(&headers, &event_etag(stored));
    let event = events.change_event(command, precondition).await?;
    Ok(changed_answer(&event))
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
    request: ReadRequest,
) -> Result<Response, ApiError> {
    let read = async {
        event_answer(api.events.event(id).await?, || {
            format!("no event with id {id}")
        })
    };
    api.reads.answer(&request, read).await
}

/// One event (the reference's path for `GET /events/{id}`).
#[utoipa::path(get, path = "/events/id/{id}", operation_id = "getEventByIdPath", tag = "events",
    params(("id" = myevents_http::openapi::Id, Path, description = "The event's id"), IfNoneMatch),
    responses(EventRead))]
async fn read_by_id_path(
    api: State<Api>,
    id: IdPath<EventId>,
    request: ReadRequest,
) -> Result<Response, ApiError> {
    read(api, id, request).await
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
