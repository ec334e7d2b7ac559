//! Buyers' holds: `POST /events/{id}/holds`, `GET /holds/{id}`, `POST /holds/{id}/confirmation`,
//! `DELETE /holds/{id}`. Each handler extracts, calls a use case of
//! [`BookingService`](crate::service::BookingService) and maps the result.

use axum::extract::State;
use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use myevents_domain::id::{BookingId, EventId};
use myevents_http::auth::Caller;
use myevents_http::idempotency::Reserved;
use myevents_http::json::{JsonBody, created, json_response};
use myevents_http::openapi::{IDEMPOTENCY_KEY_DOC, Id};
use myevents_http::path::IdPath;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::wire::{BookingBody, BookingInput, HoldBody};
use crate::service::{BookingService, HoldError, PlaceHold};

pub(crate) fn routes() -> OpenApiRouter<BookingService> {
    let (schemas, paths, hold) = routes!(hold);
    let hold = hold.route_layer(from_fn(myevents_http::idempotency::middleware::<BookingId>));
    OpenApiRouter::new()
        .routes((schemas, paths, hold))
        .routes(routes!(read, release))
        .routes(routes!(confirm))
}

/// Hold seats of an event while the buyer pays.
///
/// The seats are taken at once, as a booking's are, and kept for `HOLD_TTL` (10 minutes by
/// default; `ExpiresAt`): confirm the hold to make it the booking (same id), release it, or let it
/// lapse and its seats go back on sale. At most once per `Idempotency-Key`.
#[utoipa::path(post, path = "/events/{id}/holds", operation_id = "holdSeats", tag = "holds",
    params(("id" = Id, Path, description = "The event's id"),
        ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY_KEY_DOC,
            pattern = r#"^("[ -~]{1,255}"|[!#-~]([ -~]{0,253}[!-~])?)$"#)),
    request_body(content = BookingInput, description = "Seats to hold; keys match case-insensitively.",
        example = json!({"seats": 2})),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 201, description = "Held", body = HoldBody,
            headers(("Location" = String, description = "`/holds/{id}` of the new hold"),
                ("Idempotent-Replayed" = String)),
            links(
                ("GetHold" = (operation_id = "getHold", parameters(("id" = "$response.body#/ID")))),
                ("ConfirmHold" = (operation_id = "confirmHold", parameters(("id" = "$response.body#/ID")))),
                ("ReleaseHold" = (operation_id = "releaseHold", parameters(("id" = "$response.body#/ID")))),
            )),
        (status = 404, description = "No event with this id (or not yet known to the booking service)"),
        (status = 409, description = "Not enough seats left (`sold-out`), or a request with this `Idempotency-Key` still in progress (`Retry-After`)"),
        (status = 410, description = "The event was cancelled (`event-cancelled`)"),
        (status = 422, description = "`seats` missing, below 1 or above the maximum per booking, or an `Idempotency-Key` used for another request"),
    ))]
async fn hold(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(event_id): IdPath<EventId>,
    reserved: Reserved<BookingId>,
    JsonBody(input): JsonBody<BookingInput>,
) -> Result<Response, ApiError> {
    let command = PlaceHold {
        hold_id: reserved.id,
        event_id,
        user_id: caller.principal.user().clone(),
        seats: input.seats,
    };
    let hold = bookings.hold(command).await?;
    let location = format!("/holds/{}", hold.booking.id);
    Ok(created(&location, &HoldBody::from(&hold)))
}

/// One hold: for its holder, or an administrator (anyone else gets 404).
#[utoipa::path(get, path = "/holds/{id}", operation_id = "getHold", tag = "holds",
    params(("id" = Id, Path, description = "The hold's id")),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 200, description = "The hold", body = HoldBody),
        (status = 404, description = "No hold with this id that the caller may see: never made, confirmed (see `/bookings/{id}`), released, or lapsed and given back"),
    ))]
async fn read(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(id): IdPath<BookingId>,
) -> Result<Response, ApiError> {
    let hold = bookings
        .seat_hold(id, &caller.principal)
        .await?
        .ok_or(HoldError::NotFound(id))?;
    Ok(json_response(StatusCode::OK, &HoldBody::from(&hold)))
}

/// Confirm a hold: it becomes the booking with the same id (announced as `eventBooked`).
///
/// Its holder (or an administrator) confirms it before it lapses. Confirming again answers the
/// booking (200).
#[utoipa::path(post, path = "/holds/{id}/confirmation", operation_id = "confirmHold", tag = "holds",
    params(("id" = Id, Path, description = "The hold's id")),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 201, description = "Booked", body = BookingBody,
            headers(("Location" = String, description = "`/bookings/{id}` of the booking"))),
        (status = 200, description = "Confirmed before: the booking", body = BookingBody),
        (status = 404, description = "No hold with this id that the caller may confirm: never made, someone else's, released, or lapsed and given back"),
        (status = 410, description = "The hold lapsed before it was confirmed (`hold-lapsed`), or its event was cancelled (`event-cancelled`)"),
    ))]
async fn confirm(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(id): IdPath<BookingId>,
) -> Result<Response, ApiError> {
    let (booking, now) = bookings
        .confirm_hold(id, &caller.principal, caller.trace_parent)
        .await?;
    let body = BookingBody::from(&booking);
    Ok(if now {
        created(&format!("/bookings/{}", booking.id), &body)
    } else {
        json_response(StatusCode::OK, &body)
    })
}

/// Release a hold: its seats go back on sale at once.
#[utoipa::path(delete, path = "/holds/{id}", operation_id = "releaseHold", tag = "holds",
    params(("id" = Id, Path, description = "The hold's id")),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 204, description = "Released"),
        (status = 404, description = "No hold with this id that the caller may release: never made, someone else's, confirmed, released, or lapsed"),
    ))]
async fn release(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(id): IdPath<BookingId>,
) -> Result<Response, ApiError> {
    bookings.release_hold(id, &caller.principal).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
