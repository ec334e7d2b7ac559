//! Bookings: `POST /events/{id}/bookings`, `GET /bookings/{id}`, `DELETE /bookings/{id}`,
//! `GET /events/{id}/bookings`, `GET /users/{userId}/bookings`. Each handler extracts, calls a use
//! case of [`BookingService`](crate::service::BookingService) and maps the result.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware::from_fn;
use axum::response::Response;
use myevents_domain::booking::{Booking, UserId};
use myevents_domain::id::{BookingId, EventId};
use myevents_http::auth::Caller;
use myevents_http::idempotency::Reserved;
use myevents_http::json::created;
use myevents_http::json::{JsonBody, json_response};
use myevents_http::openapi::{IDEMPOTENCY_KEY_DOC, Id};
use myevents_http::paging::{Page, PageQuery, PageRefused, link_next};
use myevents_http::path::IdPath;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiError;
use super::wire::{BookingBody, BookingInput};
use crate::service::{BookingService, CancelBooking, PlaceBooking};

pub(crate) fn routes() -> OpenApiRouter<BookingService> {
    let (schemas, paths, book) = routes!(book);
    let book = book.route_layer(from_fn(myevents_http::idempotency::middleware::<BookingId>));
    OpenApiRouter::new()
        .routes((schemas, paths, book))
        .routes(routes!(list_for_event))
        .routes(routes!(read, cancel))
        .routes(routes!(list_for_user))
}

fn booking_answer(booking: &Booking) -> Response {
    json_response(StatusCode::OK, &BookingBody::from(booking))
}

/// Book seats of an event.
///
/// The seats are taken at once (no seat is ever oversold) and announced as `eventBooked`; the
/// event service's `SeatsAvailable` follows within milliseconds. At most once per
/// `Idempotency-Key`. The reference frontend's request (`{"seats": n}` as `text/plain`, no token,
/// a CORS simple request) is answered as it expects.
#[utoipa::path(post, path = "/events/{id}/bookings", operation_id = "bookSeats", tag = "bookings",
    params(("id" = Id, Path, description = "The event's id"),
        ("Idempotency-Key" = Option<String>, Header, description = IDEMPOTENCY_KEY_DOC,
            pattern = r#"^("[ -~]{1,255}"|[!#-~]([ -~]{0,253}[!-~])?)$"#)),
    request_body(content = BookingInput, description = "Seats to book; keys match case-insensitively. Read as JSON whatever the `Content-Type` (`text/plain` and form types too), except other media types (415).",
        example = json!({"seats": 2})),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 201, description = "Booked", body = BookingBody,
            headers(("Location" = String, description = "`/bookings/{id}` of the new booking"),
                ("Idempotent-Replayed" = String)),
            links(
                ("GetBooking" = (operation_id = "getBooking", parameters(("id" = "$response.body#/ID")))),
                ("CancelBooking" = (operation_id = "cancelBooking", parameters(("id" = "$response.body#/ID")))),
                ("ListUserBookings" = (operation_id = "listUserBookings", parameters(("user_id" = "$response.body#/UserID")))),
                ("ListEventBookings" = (operation_id = "listEventBookings", parameters(("id" = "$response.body#/EventID")))),
            )),
        (status = 404, description = "No event with this id (or not yet known to the booking service)"),
        (status = 409, description = "Not enough seats left (`sold-out`), or a request with this `Idempotency-Key` still in progress (`Retry-After`)"),
        (status = 410, description = "The event was cancelled (`event-cancelled`): nothing more is booked"),
        (status = 422, description = "`seats` missing, below 1 or above the maximum per booking, or an `Idempotency-Key` used for another request"),
    ))]
async fn book(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(event_id): IdPath<EventId>,
    reserved: Reserved<BookingId>,
    JsonBody(input): JsonBody<BookingInput>,
) -> Result<Response, ApiError> {
    let command = PlaceBooking {
        booking_id: reserved.id,
        resumed: reserved.resumed,
        event_id,
        user_id: caller.principal.user().clone(),
        seats: input.seats,
        trace_parent: caller.trace_parent,
    };
    let booking = bookings.place(command).await?;
    let location = format!("/bookings/{}", booking.id);
    Ok(created(&location, &BookingBody::from(&booking)))
}

/// Cancel a booking: its seats go back on sale (announced as `bookingCancelled`).
///
/// Only the user who booked, or an administrator, may cancel (anyone else gets 404, as for a
/// booking that does not exist); cancelling again answers the same.
#[utoipa::path(delete, path = "/bookings/{id}", operation_id = "cancelBooking", tag = "bookings",
    params(("id" = Id, Path, description = "The booking's id")),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 200, description = "The cancelled booking (with `CancelledAt`)", body = BookingBody),
        (status = 404, description = "No booking with this id that the caller may see"),
    ))]
async fn cancel(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(booking_id): IdPath<BookingId>,
) -> Result<Response, ApiError> {
    let command = CancelBooking {
        booking_id,
        by: caller.principal,
        trace_parent: caller.trace_parent,
    };
    Ok(booking_answer(&bookings.cancel(command).await?))
}

/// One booking: for the user who booked, or an administrator (anyone else gets 404).
#[utoipa::path(get, path = "/bookings/{id}", operation_id = "getBooking", tag = "bookings",
    params(("id" = Id, Path, description = "The booking's id")),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 200, description = "The booking", body = BookingBody),
        (status = 404, description = "No booking with this id that the caller may see"),
    ))]
async fn read(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(booking_id): IdPath<BookingId>,
) -> Result<Response, ApiError> {
    let booking = bookings.booking(booking_id, &caller.principal).await?;
    let booking =
        booking.ok_or_else(|| ApiError::NotFound(format!("no booking with id {booking_id}")))?;
    Ok(booking_answer(&booking))
}

fn listing(path: &str, page: myevents_store::PageRequest, bookings: &[Booking]) -> Response {
    let body: Vec<BookingBody> = bookings.iter().map(BookingBody::from).collect();
    let mut response = json_response(StatusCode::OK, &body);
    let last = bookings.last().map(|b| b.id.object_id());
    link_next(&mut response, path, page, bookings.len(), last);
    response
}

/// An event's bookings, oldest first, a page at a time (the event's organiser and administrators).
#[utoipa::path(get, path = "/events/{id}/bookings", operation_id = "listEventBookings", tag = "bookings",
    params(("id" = Id, Path, description = "The event's id"), PageQuery),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 200, description = "A page of the event's bookings", body = Vec<BookingBody>,
            headers(("Link" = String))),
        (status = 403, description = "The caller is neither the organiser who created the event nor an administrator"),
        (status = 404, description = "No event with this id"),
        PageRefused,
    ))]
async fn list_for_event(
    State(bookings): State<BookingService>,
    caller: Caller,
    IdPath(event_id): IdPath<EventId>,
    Page(page): Page,
) -> Result<Response, ApiError> {
    let bookings = bookings
        .bookings_for_event(event_id, page, &caller.principal)
        .await?;
    let path = format!("/events/{event_id}/bookings");
    Ok(listing(&path, page, &bookings))
}

/// A user's bookings, oldest first, a page at a time: for that user, or an administrator.
#[utoipa::path(get, path = "/users/{user_id}/bookings", operation_id = "listUserBookings", tag = "bookings",
    params(("user_id" = String, Path, description = "The user's id (a token's `sub`)",
            pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]{0,126}[^\s\x00-\x1f\x7f-\x9f])?$"),
        PageQuery),
    security(("bearerAuth" = []), ("userIdHeader" = [])),
    responses(
        (status = 200, description = "A page of the user's bookings", body = Vec<BookingBody>,
            headers(("Link" = String))),
        (status = 403, description = "The caller is neither this user nor an administrator"),
        (status = 422, description = "A user id that cannot be one, `limit` outside 1-1000 or `after` not an id"),
    ))]
async fn list_for_user(
    State(bookings): State<BookingService>,
    caller: Caller,
    Path(user_id): Path<String>,
    Page(page): Page,
) -> Result<Response, ApiError> {
    // A path parameter: a broken one is named as such, not as the `X-User-Id` header.
    let user = UserId::parse_as(&user_id, "user_id")?;
    let bookings = bookings
        .bookings_for_user(&user, page, &caller.principal)
        .await?;
    let user_segment = utf8_percent_encode(user.as_str(), NON_ALPHANUMERIC);
    let path = format!("/users/{user_segment}/bookings");
    Ok(listing(&path, page, &bookings))
}
