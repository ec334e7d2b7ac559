//! # myevents-http
//!
//! The HTTP edge both MyEvents services share, in axum terms, so that a service's handlers only
//! extract → call a use case → map the result:
//!
//! - [`problem`]: RFC 9457 `application/problem+json` bodies, the one place where the edge decides
//!   a status, and the cause of a server error carried to the log.
//! - [`json`]: [`json::JsonBody`], the request-body extractor with the reference's case-insensitive
//!   keys and media types, rejecting with a problem body; JSON answers ([`json::created`]).
//! - [`auth`]: who calls — bearer JWTs verified against a JWKS, a public key or an HS256 secret,
//!   or `X-User-Id` with authentication off — as a middleware and the [`auth::Caller`] extractor.
//! - [`idempotency`]: the `Idempotency-Key` header as a middleware and the [`idempotency::Reserved`]
//!   extractor (replayed responses, 409 in flight, 422 on reuse).
//! - [`cache`]: reads kept between changes, with `ETag` and `If-None-Match` (304).
//! - [`path`]: [`path::IdPath`], a typed id from the URL (404 when it is not one).
//! - [`paging`]: `limit`/`after` query parameters and `Link: rel="next"` headers of listings.
//! - [`layers`]: the middleware stack (request id, tracing, CORS, limits, metrics, problem bodies for
//!   every error, 5xx logged once).
//! - [`serve`]: graceful serving (connection limits, drain on shutdown).
//! - [`trace`]: the request's W3C trace context (`traceparent`).
//! - [`rate_limit`]: requests per caller (token subject, else client address), 429 beyond.
//! - [`tls`]: HTTPS with a certificate reloaded when its files change.
//! - [`config`]: the server's limits and CORS origins from the environment.
//! - [`openapi`]: the service's OpenAPI 3.1 document completed with what the shared middleware
//!   answers, served at `/openapi.json` with a documentation page at `/docs`.
//! - [`metrics`]: [`metrics::HttpMetrics`], the HTTP series, by `service`, method, route template
//!   and status.
//!
//! ```no_run
//! use myevents_http::config::{CorsOrigins, ServerConfig};
//!
//! let api = axum::Router::new().route("/hello", axum::routing::get(|| async { "hello" }));
//! let app = myevents_http::layers::with_common_layers(
//!     "hello-service",
//!     api,
//!     axum::Router::new(),
//!     &myevents_http::layers::Edge {
//!         auth: &myevents_http::auth::Authenticator::off(),
//!         cors: &CorsOrigins::Any,
//!         server: &ServerConfig::with_metrics(None),
//!         metrics: myevents_http::metrics::HttpMetrics::registered(),
//!         reads: None,
//!     },
//! );
//! ```

pub mod auth;
pub mod cache;
pub mod config;
pub mod idempotency;
pub mod json;
pub mod layers;
pub mod metrics;
pub mod openapi;
pub mod paging;
pub mod path;
pub mod problem;
pub mod rate_limit;
pub mod serve;
pub mod tls;
pub mod trace;

/// A boxed answer future of the tower steps written out in this crate (authentication, the
/// whole-body read), shared so that neither module depends on the other for it.
pub(crate) type Boxed = std::pin::Pin<
    Box<dyn Future<Output = Result<axum::response::Response, std::convert::Infallible>> + Send>,
>;
