//! `/locations`: create, read, list, change, delete. Each handler extracts, calls a use case of
//! [`EventService`](crate::service::EventService) and maps the result.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use myevents_domain::id::LocationId;
use myevents_domain::location::Location;
use myevents_http::auth::Caller;
use myevents_http::cache::{IfMatch, IfNoneMatch, NotModified, etag_of, if_match};
use myevents_http::idempotency::Reserved;
use myevents_http::json::created;
use myevents_http::json::{JsonBody, json_response};
use myevents_http::openapi::IDEMPOTENCY_KEY_DOC;
use myevents_http::paging::{PageQuery, PageRefused};
use myevents_http::path::IdPath;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{LocationBody, LocationInput, LocationPatchInput};
use super::{Api, ApiError, Listing, kept_page};
use crate::service::{ChangeLocation, CreateError, CreateLocation, LocationChange};

pub(crate) fn routes() -> OpenApiRouter<Api> {
    let (schemas, paths, create) = routes!(create);
    let create = create.route_layer(from_fn(
        myevents_http::idempotency::middleware::<LocationId>,
    ));
    OpenApiRouter::new()
        .routes((schemas, paths, create))
        .routes(routes!(list))
        .routes(routes!(read, change, delete))
}

/// The `ETag` of `location`'s answer: what `GET /locations/{id}` answers with for it.
fn location_etag(location: &Location) -> HeaderValue {
    etag_of(&serde_json::to_vec(&LocationBody::from(location)).unwrap_or_default())
}

/// 200 with `location`'s body and `ETag`.
fn location_answer(location: &Location) -> Response {
    let mut answer = json_response(StatusCode::OK, &LocationBody::from(location));
    answer
        .headers_mut()
        .insert(header::ETAG, location_etag(location));
    answer
}

/// The answers of a change or deletion of a location.
#[derive(utoipa::IntoResponses)]
#[expect(
    dead_code,
    reason = "it only describes the answers, which the handler builds"
)]
enum LocationChanged {
    /// The caller is neither the location's creator nor an administrator.
    #[response(
        status = 403,
        description = "The caller is neither the organiser who created the location nor an administrator"
    )]
    Forbidden,
    /// No location with this id.
    #[response(
        status = 404,
        description = "No location with this id (or it was deleted)"
    )]
    Missing,
    /// The change conflicts with the location's state.
    #[response(
        status = 409,
        description = "A hall would be removed or shrunk, an event to come takes place at the location (deletion), or other changes of the location kept coming first (try again)"
    )]
    Conflict,
    /// `If-Match` names another copy.
    #[response(
        status = 412,
        description = "`If-Match` names a copy of the location that is no longer the stored one: read it again (its `ETag`) and redo the change"
    )]
    PreconditionFailed,
    /// Invalid fields.
    #[response(
        status = 422,
        description = "Invalid fields (one entry each in `errors`)"
    )]
    Invalid,
}

/// Rename or extend a location (the organiser who created it, or an administrator).
///
/// The fields given replace the stored ones; the others stay. `Halls` is the whole list: the
/// stored halls first, in order, each renamed, moved or grown (never shrunk), then new halls.
/// Announced as `locationUpdated`. Events keep the copy of the location they were created with.
/// With `If-Match` (the `ETag` of the copy read), nothing changes when someone else changed the
/// location since (412).
#[utoipa::path(patch, path = "/locations/{id}", operation_id = "changeLocation", tag = "locations",
    params(("id" = myevents_http::openapi::Id, Path, description = "The location's id"), IfMatch),
    request_body(content = LocationPatchInput, description = "The fields to change; keys match case-insensitively, unknown keys are ignored.",
        example = json!({"Name": "West Hall and Annex", "Halls": [{"name": "A", "location": "1st floor", "capacity": 100}, {"name": "Annex", "capacity": 40}]})),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 200, description = "The location as changed", body = LocationBody, headers(("ETag" = String))),
        LocationChanged,
    ))]
async fn change(
    State(Api { events, .. }): State<Api>,
    IdPath(id): IdPath<LocationId>,
    caller: Caller,
    headers: HeaderMap,
    JsonBody(input): JsonBody<LocationPatchInput>,
) -> Result<Response, ApiError> {
    let command = ChangeLocation {
        id,
        change: LocationChange::Edit(input.into()),
        by: caller.principal,
        trace_parent: caller.trace_parent,
    };
    let precondition = |stored: &Location| if_match(&headers, &location_etag(stored));
    let changed = events.change_location(command, precondition).await?;
    let changed = changed.ok_or_else(|| ApiError::Missing(format!("no location with id {id}")))?;
    Ok(location_answer(&changed))
}

/// Delete a location (the organiser who created it, or an administrator).
///
/// Only when no event to come takes place there (every event at it has ended or is cancelled;
/// else 409 naming the first one to end). Announced as `locationDeleted`; the location is no
/// longer read nor listed, and no event can be created at it. Events that took place there keep
/// their copy of it. `If-Match` as for a change.
#[utoipa::path(delete, path = "/locations/{id}", operation_id = "deleteLocation", tag = "locations",
    params(("id" = myevents_http::openapi::Id, Path, description = "The location's id"), IfMatch),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 204, description = "Deleted"),
        LocationChanged,
    ))]
async fn delete(
    State(Api { events, .. }): State<Api>,
    IdPath(id): IdPath<LocationId>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let command = ChangeLocation {
        id,
        change: LocationChange::Delete,
        by: caller.principal,
        trace_parent: caller.trace_parent,
    };
    let precondition = |stored: &Location| if_match(&headers, &location_etag(stored));
    events.change_location(command, precondition).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Create a location with its halls (organisers).
///
/// Announced as `locationCreated`. At most once per `Idempotency-Key`.
#[utoipa::path(post, path = "/locations", operation_id = "createLocation", tag = "locations",
    request_body(content = LocationInput, description = "The location; keys match case-insensitively, unknown keys are ignored, `ID` is ignored (but must be an id, `\"\"` or `null`: else 422). Read as JSON whatever the `Content-Type`, except other media types (415).",
        example = json!({"Name": "West Hall", "Address": "1 Main St", "Country": "DE", "OpenTime": 8, "CloseTime": 22,
            "Halls": [{"name": "A", "location": "1st floor", "capacity": 100}]})),
    params(("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY_KEY_DOC,
            pattern = r#"^("[ -~]{1,255}"|[!#-~]([ -~]{0,253}[!-~])?)$"#)),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 201, description = "Created", body = LocationBody,
            headers(("Location" = String, description = "`/locations/{id}` of the new location"),
                ("Idempotent-Replayed" = String)),
            links(("GetLocation" = (operation_id = "getLocation", parameters(("id" = "$response.body#/ID")))),
                ("ChangeLocation" = (operation_id = "changeLocation", parameters(("id" = "$response.body#/ID")))),
                ("DeleteLocation" = (operation_id = "deleteLocation", parameters(("id" = "$response.body#/ID")))))),
        (status = 403, description = "The caller is not an organiser"),
        (status = 409, description = "A request with this `Idempotency-Key` is still in progress (`Retry-After`)"),
        (status = 422, description = "Invalid fields (one entry each in `errors`), or an `Idempotency-Key` used for another request"),
    ))]
async fn create(
    State(Api { events, .. }): State<Api>,
    caller: Caller,
    reserved: Reserved<LocationId>,
    JsonBody(input): JsonBody<LocationInput>,
) -> Result<Response, ApiError> {
    // `ID` is ignored, but must be what the document says it is: an id, `""` or `null`.
    input.reference("").map_err(CreateError::from)?;
    let command = CreateLocation {
        id: reserved.id,
        resumed: reserved.resumed,
        draft: input.into_draft(),
        by: caller.principal,
        trace_parent: caller.trace_parent,
    };
    let location = events.create_location(command).await?;
    let path = format!("/locations/{}", location.id);
    Ok(created(&path, &LocationBody::from(&location)))
}

/// One location.
#[utoipa::path(get, path = "/locations/{id}", operation_id = "getLocation", tag = "locations",
    params(("id" = myevents_http::openapi::Id, Path, description = "The location's id")),
    responses(
        (status = 200, description = "The location", body = LocationBody, headers(("ETag" = String))),
        (status = 404, description = "No location with this id"),
    ))]
async fn read(
    State(Api { events, .. }): State<Api>,
    IdPath(id): IdPath<LocationId>,
) -> Result<Response, ApiError> {
    let location = events.location(id).await?;
    let location =
        location.ok_or_else(|| ApiError::Missing(format!("no location with id {id}")))?;
    Ok(location_answer(&location))
}

/// Locations, oldest first, a page at a time.
#[utoipa::path(get, path = "/locations", operation_id = "listLocations", tag = "locations",
    params(PageQuery, IfNoneMatch),
    responses(
        (status = 200, description = "A page of locations", body = Vec<LocationBody>,
            headers(("Link" = String), ("ETag" = String))),
        PageRefused,
        NotModified,
    ))]
async fn list(State(api): State<Api>, listing: Listing) -> Result<Response, ApiError> {
    let read = api.events.locations(listing.page);
    kept_page::<_, LocationBody>(&api, "/locations", listing, read).await
}
