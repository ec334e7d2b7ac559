//! Waitlists: `POST /events/{id}/waitlist`, `GET /waitlist/{id}`, `DELETE /waitlist/{id}`,
//! `GET /users/{userId}/waitlist`. Each handler extracts, calls a use case of
//! [`BookingService`](crate::service::BookingService) and maps the result.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use myevents_domain::booking::UserId;
use myevents_domain::id::{EventId, WaitlistEntryId};
use myevents_http::auth::Caller;
use myevents_http::idempotency::Reserved;
use myevents_http::json::{JsonBody, created, json_response};
use myevents_http::openapi::{IDEMPOTENCY_KEY_DOC, Id};
use myevents_http::path::IdPath;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::wire::{BookingInput, WaitlistEntryBody};
use crate::service::{BookingService, JoinWaitlist};

pub(crate) fn routes() -> OpenApiRouter<BookingService> {
    let (schemas, paths, join) = routes!(join);
    let join = join.route_layer(from_fn(
        myevents_http::idempotency::middleware::<WaitlistEntryId>,
    ));
    OpenApiRouter::new()
        .routes((schemas, paths, join))
        .routes(routes!(read, leave))
        .routes(routes!(list_for_user))
}

/// Join the waitlist of a sold-out event.
///
/// Seats that come back (a cancelled booking, a released or lapsed hold, a grown capacity) are
/// offered to the waiting buyers first come first served, all the seats an entry wants or none:
/// each offer is a hold in the buyer's name (`Offer` in the entry), to confirm before it lapses
/// (`HOLD_TTL`). While anyone waits, nobody else books the event. At most once per
/// `Idempotency-Key`.
#[utoipa::path(post, path = "/events/{id}/waitlist", operation_id = "joinWaitlist", tag = "waitlist",
    params(("id" = Id, Path, description = "The event's id"),
        ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY_KEY_DOC,
            pattern = r#"^("[ -~]{1,255}"|[!#-~]([ -~]{0,253}[!-~])?)$"#)),
    request_body(content = BookingInput, description = "Seats wanted; keys match case-insensitively.",
        example = json!({"seats": 2})),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 201, description = "On the waitlist, with its place", body = WaitlistEntryBody,
            headers(("Location" = String, description = "`/waitlist/{id}` of the entry"),
                ("Idempotent-Replayed" = String)),
            links(
                ("GetWaitlistEntry" = (operation_id = "getWaitlistEntry", parameters(("id" = "$response.body#/ID")))),
                ("LeaveWaitlist" = (operation_id = "leaveWaitlist", parameters(("id" = "$response.body#/ID")))),
            )),
        (status = 404, description = "No event with this id (or not yet known to the booking service)"),
        (status = 409, description = "The seats are on sale and nobody waits (`seats-available`: book them), or a request with this `Idempotency-Key` still in progress (`Retry-After`)"),
        (status = 410, description = "The event was cancelled (`event-cancelled`)"),
        (status = 422, description = "`seats` missing, below 1 or above the maximum per booking, or an `Idempotency-Key` used for another request"),
    ))]
async fn join(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(event_id): IdPath<EventId>,
    reserved: Reserved<WaitlistEntryId>,
    JsonBody(input): JsonBody<BookingInput>,
) -> Result<Response, ApiError> {
    let command = JoinWaitlist {
        entry_id: reserved.id,
        event_id,
        user_id: caller.principal.user().clone(),
        seats: input.seats,
    };
    let entry = bookings.join_waitlist(command).await?;
    let location = format!("/waitlist/{}", entry.id);
    Ok(created(&location, &WaitlistEntryBody::from(&entry)))
}

/// One waitlist entry, with its place or its offer: for its buyer, or an administrator.
#[utoipa::path(get, path = "/waitlist/{id}", operation_id = "getWaitlistEntry", tag = "waitlist",
    params(("id" = Id, Path, description = "The entry's id")),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 200, description = "The entry", body = WaitlistEntryBody),
        (status = 404, description = "No entry with this id that the caller may see (left, or its offer lapsed)"),
    ))]
async fn read(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(id): IdPath<WaitlistEntryId>,
) -> Result<Response, ApiError> {
    let entry = bookings.waitlist_entry(id, &caller.principal).await?;
    Ok(json_response(
        StatusCode::OK,
        &WaitlistEntryBody::from(&entry),
    ))
}

/// Leave a waitlist (an offer made stays a hold: release or confirm it).
#[utoipa::path(delete, path = "/waitlist/{id}", operation_id = "leaveWaitlist", tag = "waitlist",
    params(("id" = Id, Path, description = "The entry's id")),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 204, description = "Left"),
        (status = 404, description = "No entry with this id that the caller may remove"),
    ))]
async fn leave(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(id): IdPath<WaitlistEntryId>,
) -> Result<Response, ApiError> {
    bookings.leave_waitlist(id, &caller.principal).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A user's waitlist entries, oldest first (that user and administrators).
#[utoipa::path(get, path = "/users/{user_id}/waitlist", operation_id = "listUserWaitlist", tag = "waitlist",
    params(("user_id" = String, Path, description = "The user's id (a token's `sub`)",
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?$")),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 200, description = "The user's entries (up to 1,000)", body = Vec<WaitlistEntryBody>),
        (status = 403, description = "Another user's entries"),
        (status = 422, description = "Not a user id"),
    ))]
async fn list_for_user(
    State(bookings): State<BookingService>,
    caller: Caller,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    // A path parameter: a broken one is named as such, not as the `X-User-Id` header.
    let user = UserId::parse_as(&user, "user_id")?;
    let entries = bookings.waitlist_of_user(&user, &caller.principal).await?;
    let body: Vec<WaitlistEntryBody> = entries.iter().map(WaitlistEntryBody::from).collect();
    Ok(json_response(StatusCode::OK, &body))
}
