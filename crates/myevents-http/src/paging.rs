//! Query parameters of listings: `limit` (1-1000, default 100) and `after` (the last id of the previous
//! page). A full page carries a `Link: <...>; rel="next"` header (RFC 8288).

use crate::problem::Problem;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use myevents_domain::id::ObjectId;
use myevents_domain::validation::ValidationError;
use myevents_store::{MAX_PAGE_LIMIT, PageRequest};
use serde::Deserialize;

/// Items on a page when the client names no `limit`.
pub const DEFAULT_LIMIT: usize = 100;

/// The raw query parameters of a listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Most items on the page, 1-1000 (default 100). A full page has a `Link: rel="next"` header.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000)]
    pub limit: Option<String>,
    /// The last id of the previous page (24 hex digits): the page starts after it. Empty: the
    /// first page.
    #[param(value_type = Option<String>, pattern = "^([0-9a-fA-F]{24})?$")]
    pub after: Option<String>,
}

/// The 422 answer of a listing whose `limit` or `after` is refused, for its OpenAPI description
/// (`responses(..., PageRefused)`).
#[derive(Debug, utoipa::IntoResponses)]
#[response(
    status = 422,
    description = "`limit` outside 1-1000 or `after` not an id"
)]
pub struct PageRefused;

/// Reads `limit` and `after`.
///
/// # Errors
/// A 400 [`Problem`] for an unreadable query string, 422 for a `limit` outside 1-1000 or an `after`
/// that is not an id.
pub fn page_request(
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<PageRequest, Problem> {
    let Query(query) = query.map_err(|e| Problem::malformed(e.body_text()))?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => n,
            _ => {
                return Err(ValidationError::field(
                    "limit",
                    format!("must be a whole number from 1 to {MAX_PAGE_LIMIT}"),
                )
                .into());
            }
        },
    };
    let after = match query.after.as_deref() {
        None | Some("") => None,
        Some(text) => Some(
            ObjectId::parse(text)
                .map_err(|e| ValidationError::field("after", format!("is not an id: {e}")))?,
        ),
    };
    Ok(PageRequest::new(after, limit))
}

/// Axum extractor of a listing's page (`limit`, `after`; see [`page_request`]), rejecting with its
/// problem body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page(pub PageRequest);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Page {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Problem> {
        page_request(
            <Query<PageQuery> as axum::extract::FromRequestParts<S>>::from_request_parts(
                parts, state,
            )
            .await,
        )
        .map(Self)
    }
}

/// Adds the `Link` to the next page when this page is full.
pub fn link_next(
    response: &mut Response,
    path: &str,
    page: PageRequest,
    items: usize,
    last: Option<ObjectId>,
) {
    if items < page.limit {
        return;
    }
    if let Some(last) = last {
        let link = format!("<{path}?limit={}&after={last}>; rel=\"next\"", page.limit);
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, value);
        }
    }
}
