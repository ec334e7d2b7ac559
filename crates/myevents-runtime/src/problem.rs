//! Problem details for HTTP APIs (RFC 9457): every error answer of both services is
//! `application/problem+json` with `type`, `title`, `status` and `detail`, plus `errors` (one entry per
//! invalid field) for validation failures.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use myevents_domain::validation::ValidationError;
use myevents_store::RepositoryError;
use serde::Serialize;

/// Media type of problem bodies (RFC 9457 section 3).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// One invalid field in a validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidField {
    /// The field's wire name (`Location.Halls[0].capacity`, `seats`, `X-User-Id`).
    pub field: String,
    /// Why it was refused.
    pub message: String,
}

/// A problem details object (RFC 9457 section 3.1). Build one with the constructors; it renders as
/// `application/problem+json` with its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The problem type, sent as the `type` URI `urn:myevents:problem:<slug>`; `None` sends
    /// `about:blank` (the status says it all).
    #[serde(rename = "type", serialize_with = "type_uri")]
    pub slug: Option<&'static str>,
    /// Short summary of the type.
    pub title: &'static str,
    /// The HTTP status code.
    pub status: u16,
    /// Explanation of this occurrence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Invalid fields (validation problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<InvalidField>,
    /// Extra headers sent with the answer (e.g. `Retry-After`); not part of the body.
    #[serde(skip)]
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
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

    /// 500 with a generic body; the cause must be logged by the caller, never sent.
    pub fn internal() -> Self {
        Self::status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the server failed to handle the request; it has been logged",
        )
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let headers = self.headers.clone();
        let mut response = (status, Json(self)).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        for (name, value) in headers {
            response.headers_mut().insert(name, value);
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
    /// `Conflict` is 409; `Unavailable` 503 with `Retry-After: 5`; anything else a generic 500. The
    /// cause of a 5xx is logged here, never sent.
    fn from(error: RepositoryError) -> Self {
        match error {
            RepositoryError::Conflict(what) => Self::new(
                StatusCode::CONFLICT,
                "conflict",
                "Conflict",
                format!("already exists: {what}"),
            ),
            RepositoryError::Unavailable(cause) => {
                tracing::error!(%cause, "store unavailable");
                Self::unavailable("the store is unavailable; retry later", 5)
            }
            RepositoryError::Unexpected(cause) => {
                tracing::error!(%cause, "store failure");
                Self::internal()
            }
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
}
