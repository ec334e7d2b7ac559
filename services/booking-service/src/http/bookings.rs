//! Bookings: `POST /events/{id}/bookings`, `GET /bookings/{id}`, `DELETE /bookings/{id}`,
//! `GET /events/{id}/bookings`, `GET /users/{userId}/bookings`. Each handler extracts, calls a use
//! case of [`BookingService`](crate::service::BookingService) and maps the result.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};
use myevents_domain::booking::{Booking, UserId};
use myevents_domain::id::{BookingId, EventId};
use myevents_http::auth::Caller;
use myevents_http::idempotency::Reserved;
use myevents_http::json::{JsonBody, json_response};
use myevents_http::paging::{Page, link_next};
use myevents_http::path::IdPath;
use myevents_http::server::created;
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::wire::{BookingBody, BookingInput};
use super::{ApiError, AppState};
use crate::service::{CancelBooking, PlaceBooking};

pub(crate) fn router(state: &AppState) -> Router<AppState> {
    let keys = from_fn_with_state(
        state.idempotency.route::<BookingId>(),
        myevents_http::idempotency::middleware,
    );
    Router::new()
        .route(
            "/events/{id}/bookings",
            post(book).route_layer(keys).get(list_for_event),
        )
        .route("/bookings/{id}", get(read).delete(cancel))
        .route("/users/{user_id}/bookings", get(list_for_user))
}

fn booking_answer(booking: &Booking) -> Response {
    json_response(StatusCode::OK, &BookingBody::from(booking))
}

/// `POST /events/{id}/bookings`, at most once per `Idempotency-Key` (see
/// [`myevents_http::idempotency`]).
async fn book(
    State(state): State<AppState>,
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
    let booking = state.bookings.place(command).await?;
    let location = format!("/bookings/{}", booking.id);
    Ok(created(&location, &BookingBody::from(&booking)))
}

/// `DELETE /bookings/{id}`: only the user who booked, or an administrator, may cancel (anyone else
/// gets 404, as for a booking that does not exist); cancelling again answers the same.
async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(booking_id): IdPath<BookingId>,
) -> Result<Response, ApiError> {
    let command = CancelBooking {
        booking_id,
        by: caller.principal,
        trace_parent: caller.trace_parent,
    };
    Ok(booking_answer(&state.bookings.cancel(command).await?))
}

/// `GET /bookings/{id}`: for the user who booked, or an administrator (anyone else gets 404).
async fn read(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(booking_id): IdPath<BookingId>,
) -> Result<Response, ApiError> {
    let booking = state
        .bookings
        .booking(booking_id, &caller.principal)
        .await?;
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

/// `GET /events/{id}/bookings`: for organisers.
async fn list_for_event(
    State(state): State<AppState>,
    caller: Caller,
    IdPath(event_id): IdPath<EventId>,
    Page(page): Page,
) -> Result<Response, ApiError> {
    let bookings = state
        .bookings
        .bookings_for_event(event_id, page, &caller.principal)
        .await?;
    let path = format!("/events/{event_id}/bookings");
    Ok(listing(&path, page, &bookings))
}

/// `GET /users/{userId}/bookings`: for that user, or an administrator (anyone else gets 403).
async fn list_for_user(
    State(state): State<AppState>,
    caller: Caller,
    Path(user_id): Path<String>,
    Page(page): Page,
) -> Result<Response, ApiError> {
    let user = UserId::parse(&user_id)?;
    let bookings = state
        .bookings
        .bookings_for_user(&user, page, &caller.principal)
        .await?;
    let user_segment = utf8_percent_encode(user.as_str(), NON_ALPHANUMERIC);
    let path = format!("/users/{user_segment}/bookings");
    Ok(listing(&path, page, &bookings))
}
