//! `/locations`: create, read, list. Each handler extracts, calls a use case of
//! [`EventService`](crate::service::EventService) and maps the result.

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::Response;
use myevents_domain::id::LocationId;
use myevents_http::auth::Caller;
use myevents_http::cache::{IfNoneMatch, NotModified};
use myevents_http::idempotency::Reserved;
use myevents_http::json::created;
use myevents_http::json::{JsonBody, json_response};
use myevents_http::openapi::IDEMPOTENCY_KEY_DOC;
use myevents_http::paging::{PageQuery, PageRefused};
use myevents_http::path::IdPath;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::wire::{LocationBody, LocationInput};
use super::{Api, ApiError, Listing, kept_page};
use crate::service::{CreateError, CreateLocation};

pub(crate) fn routes() -> OpenApiRouter<Api> {
    let (schemas, paths, create) = routes!(create);
    let create = create.route_layer(from_fn(
        myevents_http::idempotency::middleware::<LocationId>,
    ));
    OpenApiRouter::new()
        .routes((schemas, paths, create))
        .routes(routes!(list))
        .routes(routes!(read))
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
            links(("GetLocation" = (operation_id = "getLocation", parameters(("id" = "$response.body#/ID")))))),
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
        (status = 200, description = "The location", body = LocationBody),
        (status = 404, description = "No location with this id"),
    ))]
async fn read(
    State(Api { events, .. }): State<Api>,
    IdPath(id): IdPath<LocationId>,
) -> Result<Response, ApiError> {
    let location = events.location(id).await?;
    let location =
        location.ok_or_else(|| ApiError::Missing(format!("no location with id {id}")))?;
    Ok(json_response(
        StatusCode::OK,
        &LocationBody::from(&location),
    ))
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
