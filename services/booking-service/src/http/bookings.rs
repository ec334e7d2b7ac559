//! Bookings: `POST /events/{id}/bookings`, `GET /bookings/{id}`, `DELETE /bookings/{id}`,
//! `GET /events/{id}/bookings`, `GET /users/{userId}/bookings`.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use myevents_domain::booking::{Booking, BookingSeats, UserId};
use myevents_domain::id::{BookingId, EventId};
use myevents_domain::messages::{BookingCancelled, DomainEvent, EventBooked, OutboxMessage};
use myevents_runtime::http::{created, trace_parent};
use myevents_runtime::json::parse_body;
use myevents_runtime::paging::{PageQuery, link_next, page_request};
use myevents_store::{Cancellation, PlaceBookingError};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

use super::wire::{BookingBody, BookingInput};
use super::{ApiError, AppState};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/events/{id}/bookings", post(book).get(list_for_event))
        .route("/bookings/{id}", get(read).delete(cancel))
        .route("/users/{user_id}/bookings", get(list_for_user))
}

fn event_id(text: &str) -> Result<EventId, ApiError> {
    EventId::parse(text).map_err(|_| ApiError::NotFound(format!("no event with id {text:?}")))
}

fn user(headers: &HeaderMap) -> Result<UserId, ApiError> {
    match headers.get(myevents_runtime::idempotency::USER_HEADER) {
        None => Ok(UserId::anonymous()),
        Some(value) => {
            let text = value.to_str().map_err(|_| {
                myevents_domain::validation::ValidationError::field(
                    "X-User-Id",
                    "must be visible ASCII",
                )
            })?;
            Ok(UserId::parse(text)?)
        }
    }
}

fn now_seconds() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now)
}

/// `POST /events/{id}/bookings`, at most once per `Idempotency-Key` (see
/// [`myevents_runtime::idempotency`]).
async fn book(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let user_id = match user(&headers) {
        Ok(user_id) => user_id,
        Err(error) => return error.into_response(),
    };
    let path = format!("/events/{id}/bookings");
    let fresh_id = BookingId::generate().to_string();
    let (state_ref, request_headers, request_body, user_ref) = (&state, &headers, &body, &user_id);
    state
        .idempotency
        .run(
            user_id.as_str(),
            &headers,
            &Method::POST,
            &path,
            &body,
            fresh_id,
            |booking_id, resumed| async move {
                let user_id = user_ref.clone();
                place(
                    state_ref,
                    &id,
                    user_id,
                    request_headers,
                    request_body,
                    &booking_id,
                    resumed,
                )
                .await
                .unwrap_or_else(IntoResponse::into_response)
            },
        )
        .await
}

fn booking_created(booking: &Booking) -> Response {
    created(
        &format!("/bookings/{}", booking.id),
        &BookingBody::from(booking),
    )
}

/// Places one booking under `booking_id`. When `resumed` (an earlier attempt with the same
/// idempotency key was interrupted) the booking that attempt may have stored is answered instead.
async fn place(
    state: &AppState,
    id: &str,
    user_id: UserId,
    headers: &HeaderMap,
    body: &Bytes,
    booking_id: &str,
    resumed: bool,
) -> Result<Response, ApiError> {
    let event_id = event_id(id)?;
    let input: BookingInput = parse_body(headers, body)?;
    let seats = BookingSeats::new(input.seats, state.max_seats_per_booking)?.count();
    let booking_id = BookingId::parse(booking_id).map_err(|_| {
        ApiError::Repository(myevents_store::RepositoryError::Unexpected(format!(
            "stored idempotency key holds a malformed booking id {booking_id:?}"
        )))
    })?;
    if resumed && let Some(existing) = state.repository.booking(booking_id).await? {
        return Ok(booking_created(&existing));
    }
    let booking = Booking {
        id: booking_id,
        event_id,
        user_id,
        seats,
        booked_at: now_seconds(),
        cancelled_at: None,
    };
    let announce = OutboxMessage::new(DomainEvent::EventBooked(EventBooked {
        event_id,
        user_id: booking.user_id.to_string(),
        booking_id: Some(booking.id),
        seats: Some(seats.get()),
        booked_at: Some(booking.booked_at),
    }))
    .in_trace(trace_parent(headers));
    let remaining = match state.repository.place_booking(&booking, &announce).await {
        Ok(remaining) => remaining,
        Err(PlaceBookingError::SoldOut { remaining }) => {
            crate::metrics::SOLD_OUT.inc();
            return Err(ApiError::SoldOut {
                remaining: remaining.get(),
                requested: seats.get(),
            });
        }
        Err(PlaceBookingError::EventNotFound) => {
            return Err(ApiError::NotFound(format!(
                "no event with id {event_id} is open for booking"
            )));
        }
        // A slow earlier attempt with the same idempotency key stored this very booking meanwhile.
        Err(PlaceBookingError::Repository(myevents_store::RepositoryError::Conflict(_)))
            if resumed =>
        {
            let existing = state.repository.booking(booking_id).await?.ok_or_else(|| {
                ApiError::Repository(myevents_store::RepositoryError::Unexpected(format!(
                    "booking {booking_id} conflicts but is not stored"
                )))
            })?;
            return Ok(booking_created(&existing));
        }
        Err(PlaceBookingError::Repository(error)) => return Err(error.into()),
    };
    state.outbox_waker.notify_one();
    crate::metrics::BOOKINGS.inc();
    crate::metrics::SEATS_PER_BOOKING.observe(f64::from(seats.get()));
    tracing::info!(booking_id = %booking.id, %event_id, seats = seats.get(),
        remaining = remaining.get(), message_id = %announce.id, "booking placed");
    Ok(booking_created(&booking))
}

/// `DELETE /bookings/{id}`: only the user who booked (`X-User-Id`) may cancel; cancelling again answers
/// the same.
async fn cancel(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no booking with id {id:?}"));
    let booking_id = BookingId::parse(&id).map_err(|_| not_found())?;
    let user_id = user(&headers)?;
    let booking = state
        .repository
        .booking(booking_id)
        .await?
        .ok_or_else(not_found)?;
    if booking.user_id != user_id {
        return Err(ApiError::Forbidden(
            "only the user who booked may cancel this booking".to_owned(),
        ));
    }
    let cancelled_at = now_seconds();
    let announce = OutboxMessage::new(DomainEvent::BookingCancelled(BookingCancelled {
        booking_id,
        event_id: booking.event_id,
        user_id: booking.user_id.to_string(),
        seats: booking.seats.get(),
        cancelled_at,
    }))
    .in_trace(trace_parent(&headers));
    let booking = match state
        .repository
        .cancel_booking(booking_id, cancelled_at, &announce)
        .await?
    {
        Cancellation::Cancelled(booking) => {
            state.outbox_waker.notify_one();
            tracing::info!(%booking_id, seats = booking.seats.get(), "booking cancelled");
            booking
        }
        Cancellation::AlreadyCancelled(booking) => booking,
        Cancellation::NotFound => return Err(not_found()),
    };
    Ok(Json(BookingBody::from(&booking)).into_response())
}

async fn read(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let not_found = || ApiError::NotFound(format!("no booking with id {id:?}"));
    let booking_id = BookingId::parse(&id).map_err(|_| not_found())?;
    let booking = state
        .repository
        .booking(booking_id)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(BookingBody::from(&booking)).into_response())
}

fn listing(path: &str, page: myevents_store::PageRequest, bookings: &[Booking]) -> Response {
    let body: Vec<BookingBody> = bookings.iter().map(BookingBody::from).collect();
    let mut response = Json(body).into_response();
    let last = bookings.last().map(|b| b.id.object_id());
    link_next(&mut response, path, page, bookings.len(), last);
    response
}

async fn list_for_event(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let event_id = event_id(&id)?;
    let page = page_request(query)?;
    if state.repository.inventory(event_id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no event with id {id:?}")));
    }
    let bookings = state.repository.bookings_for_event(event_id, page).await?;
    Ok(listing(
        &format!("/events/{event_id}/bookings"),
        page,
        &bookings,
    ))
}

async fn list_for_user(
    State(state): State<AppState>,
    Path(user_id): Path<String>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let user = UserId::parse(&user_id)?;
    let page = page_request(query)?;
    let bookings = state.repository.bookings_for_user(&user, page).await?;
    let user_segment = utf8_percent_encode(user.as_str(), NON_ALPHANUMERIC);
    let path = format!("/users/{user_segment}/bookings");
    Ok(listing(&path, page, &bookings))
}
