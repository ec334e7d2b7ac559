//! Response bodies ([`json_response`], [`created`]), and request bodies, read as the reference reads them: JSON whose object keys match field names
//! case-insensitively (Go's `encoding/json` rule), unknown keys ignored.
//!
//! Bodies are parsed as JSON when their `Content-Type` is `application/json` (or `+json`), `text/plain`
//! (the reference frontend posts bookings without a content type, so browsers send `text/plain`),
//! `application/x-www-form-urlencoded` (what `curl -d` sends; the reference read any body as JSON) or
//! absent; any other media type is refused with 415.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::response::Response;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::problem::{InvalidField, Problem};

/// Bytes reserved for a response body before it is written: most single resources fit.
const RESPONSE_CAPACITY: usize = 1024;

/// A response of `status` with `body` as JSON (`Content-Type: application/json`, RFC 8259),
/// serialised straight into one growing buffer (axum's `Json` goes through a writer that copies each
/// small piece into a `BytesMut`, which costs a list of 100 events a fifth of its time). A body that
/// cannot be serialised (a map with non-string keys, say) gives a 500 problem.
pub fn json_response<T: serde::Serialize + ?Sized>(
    status: http::StatusCode,
    body: &T,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut buffer = Vec::with_capacity(RESPONSE_CAPACITY);
    match serde_json::to_writer(&mut buffer, body) {
        Ok(()) => (
            status,
            [(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            )],
            buffer,
        )
            .into_response(),
        Err(error) => Problem::internal(error).into_response(),
    }
}

/// Lower-cases every object key, recursively. When two keys differ only by case the last one wins, as
/// in Go.
pub fn lowercase_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| (k.to_lowercase(), lowercase_keys(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(lowercase_keys).collect()),
        other => other,
    }
}

/// Checks the request's media type: JSON, plain text, form-urlencoded (curl's default) or none.
///
/// # Errors
/// A 415 [`Problem`] for any other `Content-Type`.
pub fn accept_media_type(headers: &HeaderMap) -> Result<(), Problem> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let accepted = matches!(
        media.as_str(),
        "application/json" | "text/plain" | "application/x-www-form-urlencoded"
    ) || media.ends_with("+json");
    if accepted {
        Ok(())
    } else {
        Err(Problem::unsupported_media_type(&media))
    }
}

/// Parses a JSON body into `T`, whose serde field names must be all lower case.
///
/// # Errors
/// A 415 [`Problem`] for a foreign media type, 400 when the body is not JSON, 422 naming the field
/// when a value has the wrong type.
pub fn parse_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, Problem> {
    accept_media_type(headers)?;
    parse_json(body)
}

/// Parses JSON into `T` (see [`parse_body`]), whatever the media type.
///
/// # Errors
/// 400 when `body` is not a JSON object, 422 naming the field when a value has the wrong type.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| Problem::malformed(format!("the body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(Problem::malformed("the body must be a JSON object"));
    }
    serde_json::from_value(lowercase_keys(value)).map_err(|e| {
        Problem::invalid(vec![InvalidField {
            field: "body".to_owned(),
            message: e.to_string(),
        }])
    })
}

/// Axum extractor of a JSON request body read as [`parse_body`] reads it (case-insensitive keys, the
/// media types above). Its rejection is the [`Problem`] body: 415, 400 (not JSON, or a body that
/// could not be read), 413 (over the body limit) or 422 (a value of the wrong type).
///
/// ```
/// # #[derive(serde::Deserialize)] struct BookingInput { seats: Option<i64> }
/// use myevents_http::json::JsonBody;
/// async fn book(JsonBody(input): JsonBody<BookingInput>) -> String {
///     format!("{:?} seats", input.seats)
/// }
/// let _ = axum::Router::<()>::new().route("/book", axum::routing::post(book));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        accept_media_type(request.headers())?;
        let body =
            Bytes::from_request(request, state)
                .await
                .map_err(|rejection| match rejection.status() {
                    http::StatusCode::PAYLOAD_TOO_LARGE => Problem::body_too_large(),
                    _ => Problem::malformed(rejection.body_text()),
                })?;
        parse_json(&body).map(Self)
    }
}

/// A `201 Created` answer with a `Location` header (the new resource's path) and a JSON body.
pub fn created<T: serde::Serialize>(location: &str, body: &T) -> Response {
    let mut response = json_response(StatusCode::CREATED, body);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Seats {
        seats: Option<i64>,
    }

    fn headers(content_type: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(ct) = content_type {
            h.insert(header::CONTENT_TYPE, ct.parse().expect("header"));
        }
        h
    }

    #[test]
    fn keys_match_case_insensitively_and_unknown_keys_are_ignored() {
        let body = Bytes::from_static(br#"{"SEATS": 3, "note": "x"}"#);
        let parsed: Seats = parse_body(&headers(None), &body).expect("parses");
        assert_eq!(parsed, Seats { seats: Some(3) });
    }

    #[test]
    fn text_plain_is_read_as_json() {
        let body = Bytes::from_static(br#"{"seats": 2}"#);
        let parsed: Seats =
            parse_body(&headers(Some("text/plain;charset=UTF-8")), &body).expect("parses");
        assert_eq!(parsed.seats, Some(2));
    }

    #[test]
    fn foreign_media_types_malformed_json_and_wrong_types_are_problems() {
        let body = Bytes::from_static(br#"{"seats": 2}"#);
        let err = parse_body::<Seats>(&headers(Some("application/xml")), &body).expect_err("415");
        assert_eq!(err.status, 415);
        let err = parse_body::<Seats>(&headers(None), &Bytes::from_static(b"{")).expect_err("400");
        assert_eq!(err.status, 400);
        let err = parse_body::<Seats>(&headers(None), &Bytes::from_static(br#"{"seats":"two"}"#))
            .expect_err("422");
        assert_eq!(err.status, 422);
        let err =
            parse_body::<Seats>(&headers(None), &Bytes::from_static(b"[1]")).expect_err("400");
        assert_eq!(err.status, 400);
    }
}
