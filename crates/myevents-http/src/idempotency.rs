//! The `Idempotency-Key` request header (IETF draft-ietf-httpapi-idempotency-key-header) for the
//! services' `POST` handlers.
//!
//! A request without the header is handled as usual. With it, [`middleware`]:
//! - handles the first request with that key (per user) and stores its response — any status
//!   below 500 — for `ttl` (`IDEMPOTENCY_KEY_TTL`, default 24 hours);
//! - answers a retry with the same key and the same request (method, path, body) with the stored
//!   response — same status, same `Location`, same body — and `Idempotent-Replayed: true`;
//! - answers **422** when the key was used for a different request, **409** (with `Retry-After`)
//!   while the first request is still in flight, **400** when the key is malformed;
//! - after a 5xx (or a request that died), lets the next retry with that key do the work again with
//!   the resource id the first attempt was given, so it finds what that attempt may have created.
//!
//! In axum terms: [`middleware::<R>`](middleware) does the above around one `POST` route whose
//! resource gets an id of type `R`, with the service's [`Idempotency`] as a request extension (one
//! `Extension` layer over the router, so that the routes themselves are built without any state and
//! can be documented on their own), and the handler takes a [`Reserved`] extractor — the typed id
//! to create its resource under, and whether it resumes an interrupted attempt.
//!
//! ```no_run
//! # async fn demo(idempotency: myevents_http::idempotency::Idempotency) {
//! use axum::Extension;
//! use axum::handler::Handler;
//! use axum::middleware::from_fn;
//! use myevents_domain::id::LocationId;
//! use myevents_http::idempotency::{Reserved, middleware};
//!
//! async fn create(reserved: Reserved<LocationId>) -> String {
//!     format!("creating {} (resumed: {})", reserved.id, reserved.resumed)
//! }
//! let _router: axum::Router = axum::Router::new()
//!     .route(
//!         "/locations",
//!         axum::routing::post(create.layer(from_fn(middleware::<LocationId>))),
//!     )
//!     .layer(Extension(idempotency));
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures_util::future::{BoxFuture, Fuse, FusedFuture, FutureExt};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use myevents_domain::id::{BookingId, EventId, LocationId, WaitlistEntryId};
use myevents_store::idempotency::MAX_KEY_LENGTH;
use myevents_store::{
    Begin, IdempotencyRepository, IdempotencyScope, IdempotentRequest, RepositoryError,
    StoredResponse,
};
use sha2::{Digest, Sha256};

use crate::auth::Identity;
use crate::problem::Problem;
use myevents_platform::config::{ConfigError, seconds_or};

/// The request header (lower case, as `http` spells header names).
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header set on replayed responses (`true`).
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The user a request's keys belong to: the authenticated caller the
/// [`crate::auth::AuthenticateLayer`] middleware found (a token's subject; `X-User-Id`, or
/// `anonymous`, with authentication off), so that no one can replay another user's answer by naming
/// that user. `None` without a caller.
pub fn user_of(extensions: &http::Extensions) -> Option<String> {
    match extensions.get::<Identity>() {
        Some(Identity(Some(principal))) => Some(principal.user().as_str().to_owned()),
        _ => None,
    }
}

/// Largest response body kept for replay, in bytes.
const MAX_STORED_BODY: usize = 1024 * 1024;

/// Largest client-error (4xx) body kept for replay, in bytes. A larger one (e.g. a 422 naming
/// thousands of invalid fields) is not stored: the key is released, and a retry, which would get
/// the same answer from the same request, is answered afresh.
const MAX_STORED_ERROR_BODY: usize = 4 * 1024;

/// How long keys are kept and held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// How long a key is kept after its first use (`IDEMPOTENCY_KEY_TTL`, seconds, default 86400).
    pub ttl: Duration,
    /// How long one request holds a key before a retry may take it over (`IDEMPOTENCY_LEASE`,
    /// seconds, default 6). It is renewed every third of itself while the request runs, so it only
    /// bounds how long a key stays held after the process working on it died.
    pub lease: Duration,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            lease: Duration::from_secs(6),
        }
    }
}

impl IdempotencyConfig {
    /// Reads `IDEMPOTENCY_KEY_TTL` and `IDEMPOTENCY_LEASE` (whole seconds).
    ///
    /// # Errors
    /// A value that is not a whole number of seconds, or zero.
    pub fn from_env() -> Result<Self, ConfigError> {
        let defaults = Self::default();
        let ttl = seconds_or("IDEMPOTENCY_KEY_TTL", defaults.ttl)?;
        let lease = seconds_or("IDEMPOTENCY_LEASE", defaults.lease)?;
        for (name, value) in [("IDEMPOTENCY_KEY_TTL", ttl), ("IDEMPOTENCY_LEASE", lease)] {
            if value.is_zero() {
                return Err(ConfigError::new(name, "0", "must be at least 1 second"));
            }
        }
        Ok(Self { ttl, lease })
    }
}

/// Idempotency-key handling over one service's [`IdempotencyRepository`]. Cheap to clone.
#[derive(Clone)]
pub struct Idempotency {
    repository: Arc<dyn IdempotencyRepository>,
    config: IdempotencyConfig,
}

/// The client's idempotency key, if it sent one: a structured-field string (`"abc"`, RFC 8941) or,
/// leniently, the bare text; 1 ..= 255 visible ASCII characters.
///
/// # Errors
/// A 400 problem naming the header when it is empty, too long or not visible ASCII.
pub fn key(headers: &HeaderMap) -> Result<Option<String>, Problem> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let malformed = || {
        Problem::malformed(format!(
            "Idempotency-Key must be a string of 1 to {MAX_KEY_LENGTH} visible ASCII characters"
        ))
    };
    let text = value.to_str().map_err(|_| malformed())?.trim();
    // A structured-field string (`"abc"`), or the bare text when it does not start with a quote.
    let text = match text.strip_prefix('"') {
        Some(quoted) => quoted.strip_suffix('"').ok_or_else(malformed)?,
        None => text,
    };
    if text.is_empty()
        || text.len() > MAX_KEY_LENGTH
        || !text.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(malformed());
    }
    Ok(Some(text.to_owned()))
}

/// A digest (SHA-256, hex) of what makes a request: method, path and body. A JSON body is taken
/// with its keys lower-cased and sorted, so the same document spelled differently is the same
/// request (as the services read keys case-insensitively).
pub fn fingerprint(method: &Method, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_str().as_bytes());
    hasher.update([0]);
    hasher.update(path.as_bytes());
    hasher.update([0]);
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => {
            let mut canonical = String::new();
            write_canonical(&crate::json::lowercase_keys(value), &mut canonical);
            hasher.update(b"json:");
            hasher.update(canonical.as_bytes());
        }
        Err(_) => {
            hasher.update(b"raw:");
            hasher.update(body);
        }
    }
    hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `value` as JSON with the keys of every object sorted (whatever order `serde_json` keeps).
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(item, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The id a resource gets when a request creates it, as kept with an idempotency key (text) and as
/// the handler sees it (typed).
pub trait ResourceId: Sized + Send + Sync + 'static {
    /// A new id, for a request that creates a new resource.
    fn generate() -> Self;
    /// The id as kept with the key.
    fn to_key_text(&self) -> String;
    /// The id back from the text [`ResourceId::to_key_text`] made; `None` when it is not one.
    fn from_key_text(text: &str) -> Option<Self>;
}

macro_rules! object_id_resource {
    ($($id:ty),*) => {$(
        impl ResourceId for $id {
            fn generate() -> Self {
                <$id>::generate()
            }
            fn to_key_text(&self) -> String {
                self.to_string()
            }
            fn from_key_text(text: &str) -> Option<Self> {
                <$id>::parse(text).ok()
            }
        }
    )*};
}

object_id_resource!(BookingId, EventId, LocationId, WaitlistEntryId);

/// Two ids, `<first>/<second>`: for a request that may create two resources (an event and the
/// location it describes inline).
impl<A: ResourceId, B: ResourceId> ResourceId for (A, B) {
    fn generate() -> Self {
        (A::generate(), B::generate())
    }
    fn to_key_text(&self) -> String {
        format!("{}/{}", self.0.to_key_text(), self.1.to_key_text())
    }
    fn from_key_text(text: &str) -> Option<Self> {
        let (a, b) = text.split_once('/')?;
        Some((A::from_key_text(a)?, B::from_key_text(b)?))
    }
}

/// What the middleware reserved for the request, read by [`Reserved`].
#[derive(Debug, Clone)]
struct Reservation {
    resource_id: String,
    resumed: bool,
}

/// Axum extractor: the id the handler creates its resource under, and whether an earlier attempt
/// with the same idempotency key was interrupted (then its resource may exist already: look it up
/// before creating it). Without a key (or without [`middleware`] on the route) a fresh id, not
/// resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reserved<R> {
    /// The resource's id.
    pub id: R,
    /// Whether this request resumes an interrupted one.
    pub resumed: bool,
}

impl<S: Send + Sync, R: ResourceId> FromRequestParts<S> for Reserved<R> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Problem> {
        let Some(reservation) = parts.extensions.get::<Reservation>() else {
            return Ok(Self {
                id: R::generate(),
                resumed: false,
            });
        };
        let id = R::from_key_text(&reservation.resource_id).ok_or_else(|| {
            Problem::internal(format!(
                "an idempotency key holds the malformed resource id {:?}",
                reservation.resource_id
            ))
        })?;
        Ok(Self {
            id,
            resumed: reservation.resumed,
        })
    }
}

impl Idempotency {
    /// Key handling over `repository` with `config`.
    pub fn new(repository: Arc<dyn IdempotencyRepository>, config: IdempotencyConfig) -> Self {
        Self { repository, config }
    }
}

/// Largest request body the middleware reads for the fingerprint, in bytes; the server's body
/// limit (`HTTP_BODY_LIMIT`) is smaller and applies first.
const MAX_FINGERPRINTED_BODY: usize = 16 * 1024 * 1024;

/// Axum middleware of a route whose resource gets an id of type `R`: handles the request at most
/// once per (user, `Idempotency-Key`), as the module docs say; a request without the header goes to
/// the handler as it is. The service's [`Idempotency`] comes from the request's extensions (a 500
/// problem when the router lacks its `Extension` layer, a wiring error).
pub async fn middleware<R: ResourceId>(
    Extension(idempotency): Extension<Idempotency>,
    request: Request,
    next: Next,
) -> Response {
    let key = match key(request.headers()) {
        Ok(Some(key)) => key,
        Ok(None) => return next.run(request).await,
        Err(problem) => return problem.into_response(),
    };
    // Without a caller the handler refuses the request (401): there is nothing to keep.
    let Some(user) = user_of(request.extensions()) else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_FINGERPRINTED_BODY).await else {
        return Problem::body_too_large().into_response();
    };
    let scope = IdempotencyScope { user, key };
    let request = IdempotentRequest {
        fingerprint: fingerprint(&parts.method, parts.uri.path(), &body),
        resource_id: R::generate().to_key_text(),
        now: Utc::now(),
        lease: idempotency.config.lease,
        ttl: idempotency.config.ttl,
    };
    let (token, reservation) = match idempotency.repository.begin(&scope, &request).await {
        Ok(Begin::Started {
            token,
            resource_id,
            resumed,
        }) => (
            token,
            Reservation {
                resource_id,
                resumed,
            },
        ),
        Ok(Begin::Completed(stored)) => return replay(stored),
        Ok(Begin::InFlight) => return Problem::key_in_flight().into_response(),
        Ok(Begin::Mismatch) => return Problem::key_reused().into_response(),
        Err(error) => return Problem::from(error).into_response(),
    };
    parts.extensions.insert(reservation);
    let work = next.run(Request::from_parts(parts, Body::from(body)));
    let response = idempotency.hold_while(&scope, &token, work).await;
    idempotency.keep(&scope, &token, response).await
}

impl Idempotency {
    /// Stores `response` under the key (any status below 500 whose body is small enough), or releases
    /// the key so that a retry does the work again; returns the response.
    async fn keep(&self, scope: &IdempotencyScope, token: &str, response: Response) -> Response {
        if response.status().is_server_error() {
            self.release(scope, token).await;
            return response;
        }
        let (parts, body) = response.into_parts();
        let body = match axum::body::to_bytes(body, MAX_STORED_BODY).await {
            Ok(body) => body,
            Err(error) => {
                self.release(scope, token).await;
                return Problem::internal(format!(
                    "the response body could not be read for the idempotency key: {error}"
                ))
                .into_response();
            }
        };
        if parts.status.is_client_error() && body.len() > MAX_STORED_ERROR_BODY {
            self.release(scope, token).await;
            return Response::from_parts(parts, Body::from(body));
        }
        let header_text = |name: header::HeaderName| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let stored = StoredResponse {
            status: parts.status.as_u16(),
            location: header_text(header::LOCATION),
            content_type: header_text(header::CONTENT_TYPE),
            body: body.to_vec(),
        };
        match self.repository.complete(scope, token, &stored).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "idempotency key taken over by a retry before this request completed"
            ),
            // The work is done and its answer goes out; a retry resumes the key and finds the
            // resource by its id.
            Err(error) => {
                tracing::warn!(%error, "could not store the response of an idempotency key");
            }
        }
        Response::from_parts(parts, Body::from(body))
    }

    /// Lets the next request with the key do the work again.
    async fn release(&self, scope: &IdempotencyScope, token: &str) {
        if let Err(error) = self.repository.release(scope, token).await {
            tracing::warn!(%error, "could not release an idempotency key");
        }
    }

    /// Runs `work` while renewing the lease of `token` every third of the lease, so that the key is
    /// held as long as this process works on it, and no longer than a lease after it died.
    ///
    /// A renewal runs beside `work`, never instead of it: `work` may hold one of the store's pooled
    /// connections while the renewal waits for another, and with every connection held by work
    /// that is not polled, no renewal and no work would ever go on (a deadlock that lasted until
    /// the request time-out). A renewal still under way when `work` ends is finished first, so
    /// that it cannot take the key back after the answer is kept or the key released.
    async fn hold_while(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        work: impl Future<Output = Response>,
    ) -> Response {
        let lease = self.config.lease;
        let mut heartbeat = tokio::time::interval(lease / 3);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        heartbeat.tick().await;
        let renewal = Fuse::<Renewal<'_>>::terminated();
        tokio::pin!(work, renewal);
        let mut holding = true;
        loop {
            tokio::select! {
                response = &mut work => {
                    if !renewal.is_terminated() {
                        renewed(renewal.await);
                    }
                    return response;
                }
                _ = heartbeat.tick(), if holding && renewal.is_terminated() => {
                    let lease = chrono::TimeDelta::from_std(lease).unwrap_or(chrono::TimeDelta::MAX);
                    let until = Utc::now()
                        .checked_add_signed(lease)
                        .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC);
                    renewal.set(self.repository.renew(scope, token, until).fuse());
                }
                result = &mut renewal, if !renewal.is_terminated() => holding = renewed(result),
            }
        }
    }
}

/// A lease renewal under way ([`IdempotencyRepository::renew`]).
type Renewal<'a> = BoxFuture<'a, Result<bool, RepositoryError>>;

/// Whether the lease is still held after a renewal that returned `result` (a failed renewal is
/// retried at the next heartbeat).
fn renewed(result: Result<bool, RepositoryError>) -> bool {
    match result {
        Ok(true) => true,
        Ok(false) => {
            tracing::warn!("idempotency lease lost while the request was running");
            false
        }
        Err(error) => {
            tracing::warn!(%error, "could not renew an idempotency lease");
            true
        }
    }
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (name, value) in [
        (header::LOCATION, stored.location),
        (header::CONTENT_TYPE, stored.content_type),
    ] {
        if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            headers.insert(name, value);
        }
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            IDEMPOTENCY_KEY,
            HeaderValue::from_str(value).expect("value"),
        );
        headers
    }

    #[test]
    fn a_quoted_or_bare_key_is_read_and_a_malformed_one_refused() {
        assert_eq!(key(&HeaderMap::new()).expect("none"), None);
        assert_eq!(
            key(&headers("\"abc-1\"")).expect("quoted"),
            Some("abc-1".to_owned())
        );
        assert_eq!(
            key(&headers("abc-1")).expect("bare"),
            Some("abc-1".to_owned())
        );
        assert_eq!(key(&headers("\"\"")).expect_err("empty").status, 400);
        // As documented: a value that opens a quote closes it.
        assert_eq!(key(&headers("\"abc")).expect_err("unclosed").status, 400);
        assert_eq!(
            key(&headers(&"k".repeat(256))).expect_err("long").status,
            400
        );
    }

    #[test]
    fn the_fingerprint_ignores_key_case_and_order_but_not_values_or_paths() {
        let post = Method::POST;
        let a = fingerprint(&post, "/events/1/bookings", br#"{"seats": 2, "note": "x"}"#);
        let b = fingerprint(&post, "/events/1/bookings", br#"{"Note":"x","SEATS":2}"#);
        assert_eq!(a, b);
        assert_ne!(
            a,
            fingerprint(&post, "/events/1/bookings", br#"{"seats": 3}"#)
        );
        assert_ne!(
            a,
            fingerprint(&post, "/events/2/bookings", br#"{"seats": 2, "note": "x"}"#)
        );
        assert_ne!(
            fingerprint(&post, "/p", b"seats=2"),
            fingerprint(&post, "/p", b"seats=3")
        );
    }

    fn app(runs: &Arc<std::sync::atomic::AtomicUsize>) -> axum::Router {
        use axum::handler::Handler;
        use myevents_store::memory::InMemoryIdempotencyRepository;
        let idempotency = Idempotency::new(
            Arc::new(InMemoryIdempotencyRepository::default()),
            IdempotencyConfig::default(),
        );
        let answer = |size: usize| {
            let runs = Arc::clone(runs);
            move |reserved: Reserved<LocationId>| async move {
                runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = format!("{} {}", reserved.id, "x".repeat(size));
                (StatusCode::UNPROCESSABLE_ENTITY, body).into_response()
            }
        };
        let layer = axum::middleware::from_fn(middleware::<LocationId>);
        axum::Router::new()
            .route(
                "/big",
                axum::routing::post(answer(5000).layer(layer.clone())),
            )
            .route("/small", axum::routing::post(answer(100).layer(layer)))
            .layer(axum::Extension(idempotency))
            .layer(crate::auth::AuthenticateLayer(
                crate::auth::Authenticator::off(),
            ))
    }

    async fn post(app: &axum::Router, path: &str, key: &str) -> (StatusCode, String) {
        use tower::ServiceExt;
        let response = app
            .clone()
            .oneshot(
                Request::post(path)
                    .header(IDEMPOTENCY_KEY, key)
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn a_large_client_error_is_answered_again_not_stored_and_a_small_one_is_replayed() {
        for (path, answers) in [("/big", 2), ("/small", 1)] {
            let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let app = app(&runs);
            let (first, first_body) = post(&app, path, "k").await;
            let (second, second_body) = post(&app, path, "k").await;
            assert_eq!(first, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(second, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(
                runs.load(std::sync::atomic::Ordering::SeqCst),
                answers,
                "{path}"
            );
            // Either way the same key names the same resource id.
            assert_eq!(first_body[..24], second_body[..24], "{path}");
        }
    }

    #[test]
    fn resource_ids_round_trip_through_the_key_text_and_junk_is_refused() {
        let pair = <(EventId, LocationId)>::generate();
        assert_eq!(
            <(EventId, LocationId)>::from_key_text(&pair.to_key_text()),
            Some(pair)
        );
        assert_eq!(BookingId::from_key_text("not-an-id"), None);
        assert_eq!(<(EventId, LocationId)>::from_key_text("abc"), None);
    }

    #[test]
    fn lease_and_ttl_default_to_six_seconds_and_a_day() {
        let config = IdempotencyConfig::default();
        assert_eq!(config.ttl, Duration::from_secs(86_400));
        assert_eq!(config.lease, Duration::from_secs(6));
    }

    /// An idempotency store with one pooled connection (a [`tokio::sync::Semaphore`] of one
    /// permit) that its lease renewals wait for, as the MongoDB driver's do; `renewals` counts the
    /// renewals started and finished.
    struct PoolOfOne {
        inner: myevents_store::memory::InMemoryIdempotencyRepository,
        connection: Arc<tokio::sync::Semaphore>,
        renewals: Arc<std::sync::Mutex<(usize, usize)>>,
    }

    impl IdempotencyRepository for PoolOfOne {
        fn begin<'s, 'a, 'b, 'f>(
            &'s self,
            scope: &'a IdempotencyScope,
            request: &'b IdempotentRequest,
        ) -> BoxFuture<'f, Result<Begin, RepositoryError>>
        where
            's: 'f,
            'a: 'f,
            'b: 'f,
            Self: 'f,
        {
            self.inner.begin(scope, request)
        }

        fn complete<'s, 'a, 'b, 'c, 'f>(
            &'s self,
            scope: &'a IdempotencyScope,
            token: &'b str,
            response: &'c StoredResponse,
        ) -> BoxFuture<'f, Result<bool, RepositoryError>>
        where
            's: 'f,
            'a: 'f,
            'b: 'f,
            'c: 'f,
            Self: 'f,
        {
            self.inner.complete(scope, token, response)
        }

        fn renew<'s, 'a, 'b, 'f>(
            &'s self,
            scope: &'a IdempotencyScope,
            token: &'b str,
            until: chrono::DateTime<Utc>,
        ) -> BoxFuture<'f, Result<bool, RepositoryError>>
        where
            's: 'f,
            'a: 'f,
            'b: 'f,
            Self: 'f,
        {
            Box::pin(async move {
                self.renewals.lock().expect("counts").0 += 1;
                let _connection = self.connection.acquire().await.expect("open");
                tokio::task::yield_now().await;
                let renewed = self.inner.renew(scope, token, until).await;
                self.renewals.lock().expect("counts").1 += 1;
                renewed
            })
        }

        fn release<'s, 'a, 'b, 'f>(
            &'s self,
            scope: &'a IdempotencyScope,
            token: &'b str,
        ) -> BoxFuture<'f, Result<(), RepositoryError>>
        where
            's: 'f,
            'a: 'f,
            'b: 'f,
            Self: 'f,
        {
            self.inner.release(scope, token)
        }
    }

    /// The work of a keyed request holds the store's only connection across several heartbeats
    /// of its lease (a slow write): its renewals wait for the connection while the work goes on,
    /// instead of stopping the work that holds it (which never ended: a deadlock until the request
    /// time-out). The renewal under way when the work ends is finished before the answer.
    #[tokio::test]
    async fn a_renewal_waiting_for_the_connection_the_work_holds_lets_the_work_finish() {
        use axum::handler::Handler;
        let connection = Arc::new(tokio::sync::Semaphore::new(1));
        let renewals = Arc::new(std::sync::Mutex::new((0, 0)));
        let repository = PoolOfOne {
            inner: myevents_store::memory::InMemoryIdempotencyRepository::default(),
            connection: Arc::clone(&connection),
            renewals: Arc::clone(&renewals),
        };
        let idempotency = Idempotency::new(
            Arc::new(repository),
            IdempotencyConfig {
                lease: Duration::from_millis(300),
                ..IdempotencyConfig::default()
            },
        );
        let work = move |reserved: Reserved<LocationId>| async move {
            let _connection = connection.acquire().await.expect("open");
            // Four heartbeats of the lease (one every 100 ms).
            tokio::time::sleep(Duration::from_millis(450)).await;
            (StatusCode::CREATED, reserved.id.to_string()).into_response()
        };
        let app = axum::Router::new()
            .route(
                "/slow",
                axum::routing::post(
                    work.layer(axum::middleware::from_fn(middleware::<LocationId>)),
                ),
            )
            .layer(axum::Extension(idempotency))
            .layer(crate::auth::AuthenticateLayer(
                crate::auth::Authenticator::off(),
            ));
        let answered = tokio::time::timeout(Duration::from_secs(10), post(&app, "/slow", "k"))
            .await
            .expect("answered while its renewals waited for the connection it held");
        assert_eq!(answered.0, StatusCode::CREATED);
        let (started, finished) = *renewals.lock().expect("counts");
        assert!(started >= 1, "the lease was renewed while the work ran");
        assert_eq!(
            started, finished,
            "no renewal left under way after the answer"
        );
    }
}
