//! Problem details for HTTP APIs (RFC 9457): every error answer of both services is
//! `application/problem+json` with `type`, `title`, `status` and `detail`, plus `errors` (one entry per
//! invalid field) for validation failures.

use std::sync::Arc;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use myevents_domain::validation::ValidationError;
use myevents_store::RepositoryError;
use serde::Serialize;

/// Media type of problem bodies (RFC 9457 section 3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field in a validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct InvalidField {
    /// The field's wire name (`Location.Halls[0].capacity`, `seats`, `X-User-Id`).
    #[schema(example = "Location.Halls[0].capacity")]
    pub field: String,
    /// Why it was refused.
    pub message: String,
}

/// The cause of a server error (5xx), carried from where it happened to the one place that logs it
/// (`myevents_http::layers::with_common_layers`, with the request's span): never sent to the client.
/// (The error sits behind a thin pointer, so that a [`Problem`] stays small.)
#[derive(Debug, Clone)]
pub struct ServerErrorCause(Arc<Box<dyn std::error::Error + Send + Sync>>);

impl std::fmt::Display for ServerErrorCause {
    /// The error and its chain of sources, `outer: inner: innermost`. Our errors tell their cause
    /// either in their text or as their source, never both, so each cause is told once.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(error) = source {
            write!(f, ": {error}")?;
            source = error.source();
        }
        Ok(())
    }
}

/// A problem details object (RFC 9457 section 3.1). Build one with the constructors — they are the
/// one place where the HTTP edge decides a status; it renders as `application/problem+json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(example = json!({"type": "urn:myevents:problem:sold-out", "title": "Not enough seats",
    "status": 409, "detail": "event 6b026ab2686c822a56b0fe36 has 1 seat left, 2 requested"}))]
pub struct Problem {
    /// The problem type, sent as the `type` URI `urn:myevents:problem:<slug>`; `None` sends
    /// `about:blank` (the status says it all).
    #[serde(rename = "type", serialize_with = "type_uri")]
    #[schema(value_type = String, required = true,
        pattern = "^(about:blank|urn:myevents:problem:[a-z-]+)$")]
    pub slug: Option<&'static str>,
    /// Short summary of the type.
    #[schema(value_type = String)]
    pub title: &'static str,
    /// The HTTP status code.
    #[schema(minimum = 400, maximum = 599)]
    pub status: u16,
    /// Explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Invalid fields (validation problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub errors: Vec<InvalidField>,
    /// Extra headers sent with the answer (e.g. `Retry-After`); not part of the body.
    #[serde(skip)]
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
    /// What caused a server error, for the log (see [`ServerErrorCause`]); not part of the body.
    #[serde(skip)]
    pub cause: Option<ServerErrorCause>,
}

fn type_uri<S: serde::Serializer>(slug: &Option<&'static str>, s: S) -> Result<S::Ok, S::Error> {
    match slug {
        Some(slug) => s.collect_str(&format_args!("urn:myevents:problem:{slug}")),
        None => s.serialize_str("about:blank"),
    }
}

impl Problem {
    /// A problem of type `urn:myevents:problem:<slug>`.
    pub fn new(
        status: StatusCode,
        slug: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            slug: Some(slug),
            title,
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: Vec::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    /// A problem of type `about:blank` whose title is the status's reason phrase.
    pub fn status(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            slug: None,
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail: Some(detail.into()),
            errors: Vec::new(),
            headers: Vec::new(),
            cause: None,
        }
    }

    /// 404: no resource at this URL.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::status(StatusCode::NOT_FOUND, detail)
    }

    /// 400: the body is not JSON (or not the expected media type).
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "malformed-request",
            "Malformed request",
            detail,
        )
    }

    /// 422: the input is well-formed but breaks rules; one entry per field.
    pub fn invalid(errors: Vec<InvalidField>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid input",
                detail,
            )
        }
    }

    /// 503: a dependency (store, broker) is unavailable; retry after `retry_after_seconds` seconds.
    pub fn unavailable(detail: impl Into<String>, retry_after_seconds: u32) -> Self {
        let mut problem = Self::status(StatusCode::SERVICE_UNAVAILABLE, detail);
        problem
            .headers
            .push((header::RETRY_AFTER, HeaderValue::from(retry_after_seconds)));
        problem
    }

    /// 500 with a generic body; `cause` is logged with the request, never sent.
    pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to handle the request; it has been logged",
        )
        .caused_by(cause)
    }

    /// The same problem, with `cause` kept for the log of a server error.
    #[must_use]
    pub fn caused_by(mut self, cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        self.cause = Some(ServerErrorCause(Arc::new(cause.into())));
        self
    }

    /// 409 with `Retry-After: 1`: a request with the same `Idempotency-Key` is still in progress.
    pub fn key_in_flight() -> Self {
        let mut problem = Self::new(
            StatusCode::CONFLICT,
            "idempotency-key-in-flight",
            "Request in progress",
            "a request with this Idempotency-Key is still being processed; retry later",
        );
        problem
            .headers
            .push((header::RETRY_AFTER, HeaderValue::from_static("1")));
        problem
    }

    /// 422: the `Idempotency-Key` was used for a different request.
    pub fn key_reused() -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency-key-reused",
            "Idempotency-Key reused",
            "this Idempotency-Key was used for a different request",
        )
    }

    /// 415: a body of a media type the API does not read.
    pub fn unsupported_media_type(media: &str) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            format!("send application/json (or text/plain), not {media}"),
        )
    }

    /// 413: the body exceeds `HTTP_BODY_LIMIT`.
    pub fn body_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body-too-large",
            "Request body too large",
            "the request body exceeds the limit (HTTP_BODY_LIMIT)",
        )
    }

    /// 408 (with `Connection: close`): the body did not arrive within `HTTP_BODY_READ_TIMEOUT`.
    pub fn body_timeout() -> Self {
        let mut problem = Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "body-timeout",
            "Request body too slow",
            "the request body did not arrive within HTTP_BODY_READ_TIMEOUT",
        );
        problem
            .headers
            .push((header::CONNECTION, HeaderValue::from_static("close")));
        problem
    }

    /// 503 + `Retry-After: 1`: the service sheds load, or the request took too long.
    pub fn overloaded() -> Self {
        Self::unavailable(
            "the service is at its limit of requests in flight, or the request took too long; retry",
            1,
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(mut self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = std::mem::take(&mut self.headers);
        let cause = self.cause.take();
        let mut response = (status, Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
        }
        if let Some(cause) = cause {
            response.extensions_mut().insert(cause);
        }
        response
    }
}

impl From<ValidationError> for Problem {
    fn from(error: ValidationError) -> Self {
        Self::invalid(
            error
                .0
                .into_iter()
                .map(|e| InvalidField {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        )
    }
}

impl From<RepositoryError> for Problem {
    /// `Conflict` is 409; `Gone` 410; `Unavailable` 503 with `Retry-After: 5`; anything else a generic 500. The
    /// cause of a 5xx goes with the problem to the log, never to the client.
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                format!("already exists: {what}"),
            ),
            RepositoryError::Gone(what) => Self::new(
                StatusCode::GONE,
                "gone",
                "Gone",
                format!("deleted meanwhile: {what}"),
            ),
            error @ RepositoryError::Unavailable(_) => {
                Self::unavailable("the store is unavailable; retry later", 5).caused_by(error)
            }
            error @ RepositoryError::Unexpected(_) => Self::internal(error),
        }
    }
}

/// Answers 404 for routes that do not exist (the router's fallback).
pub async fn route_not_found(uri: http::Uri) -> Problem {
    Problem::not_found(format!("no resource at {}", uri.path()))
}

/// Answers 405 for a known route with another method.
pub async fn method_not_allowed(method: http::Method, uri: http::Uri) -> Problem {
    Problem::status(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_problem_renders_as_problem_json_with_its_status() {
        let response = Problem::unavailable("store down", 5).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let body = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .expect("body");
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(json["status"], 503);
        assert_eq!(json["type"], "about:blank");
        assert_eq!(json["title"], "Service Unavailable");
        assert_eq!(json["detail"], "store down");
    }

    #[tokio::test]
    async fn a_server_error_keeps_its_cause_for_the_log_and_out_of_the_body() {
        let store = RepositoryError::Unavailable(myevents_platform::error::Cause::context(
            "reading events",
            std::io::Error::other("connection reset"),
        ));
        let response = Problem::from(store).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let cause = response
            .extensions()
            .get::<ServerErrorCause>()
            .expect("cause")
            .to_string();
        // Each cause is told once: the store's error tells its cause in its text, not as a source.
        assert_eq!(cause, "store unavailable: reading events: connection reset");
        let body = axum::body::to_bytes(response.into_body(), 10_000)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(!text.contains("connection reset"), "{text}");
    }
}
