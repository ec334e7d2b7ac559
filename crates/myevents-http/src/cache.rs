//! Conditional and kept reads: a read's answer is kept (its serialised body, `Content-Type`, `Link`
//! and a strong `ETag`) and served again until the service changes what it shows, or for at most a
//! bound, whichever comes first; a client that sends the `ETag` back in `If-None-Match` gets
//! **304 Not Modified** without a body (RFC 9110 sections 8.8.3, 13.1.2 and 15.4.5).
//!
//! A change this process makes (a write, a message it consumed) makes every kept answer stale at
//! once ([`ReadCache::new`]'s `generation`). A change another replica makes is not seen here: its
//! answers are kept for at most `max_age`, which bounds how old a copy any replica serves after a
//! change elsewhere. [`KeptAnswerLayer`] serves kept answers to anonymous `GET`s in front of the
//! router, before anything that costs more than the answer.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::sync::atomic::{AtomicU64, Ordering};
//! use std::time::Duration;
//!
//! let changes = Arc::new(AtomicU64::new(0));
//! let seen = Arc::clone(&changes);
//! let reads = myevents_http::cache::ReadCache::new(Duration::from_secs(1), move || {
//!     seen.load(Ordering::Relaxed)
//! });
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use sha2::{Digest, Sha256};

/// Most answers kept at once; past it the kept answers are dropped and kept again as they are read
/// (listings can be asked for with any `after` and `limit`).
pub const MAX_KEPT_ANSWERS: usize = 1024;

/// Most bytes of bodies kept at once (16 MiB); past it the kept answers are dropped likewise.
pub const MAX_KEPT_BYTES: usize = 16 << 20;

/// Largest body kept, in bytes (1 MiB, more than a page of 1,000 events); a larger one is served
/// but not kept.
pub const MAX_KEPT_BODY: usize = 1 << 20;

/// The `If-None-Match` request header of the reads that answer with an `ETag`, for their OpenAPI
/// description (`params(IfNoneMatch)`); the handler reads the headers themselves.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfNoneMatch {
    #[doc = "Entity tags of answers the client holds (RFC 9110 section 13.1.2), or `*`: when one of them is still the answer's `ETag`, the answer is 304 without a body."]
    #[param(rename = "If-None-Match")]
    pub if_none_match: Option<String>,
}

/// The 304 answer of a read that answers with an `ETag`, for its OpenAPI description
/// (`responses(..., NotModified)`).
#[derive(Debug, utoipa::IntoResponses)]
#[response(status = 304, description = "Not modified: `If-None-Match` names the answer's `ETag`",
    headers(("ETag" = String)))]
pub struct NotModified;

/// An answer kept, and what it was computed from.
#[derive(Debug)]
struct Kept {
    /// The change count it was computed at.
    generation: u64,
    /// When it was computed.
    at: Instant,
    etag: HeaderValue,
    content_type: Option<HeaderValue>,
    link: Option<HeaderValue>,
    body: Bytes,
    /// The route template of the read, put in the answer's extensions when it is served in front
    /// of the router (for the metrics and the access log, as the router's layer does).
    route: Option<MatchedPath>,
}

/// What a kept read needs of its request: the key its answer is kept under (the path and query,
/// see [`request_key`]), the client's headers (`If-None-Match`) and the route template (axum's
/// [`MatchedPath`]). An extractor that never rejects.
#[derive(Debug, Clone)]
pub struct ReadRequest {
    key: String,
    headers: HeaderMap,
    route: Option<MatchedPath>,
}

impl ReadRequest {
    /// A read of `key` (a path and query) by a client that sent `headers`, outside any route.
    pub fn new(key: impl Into<String>, headers: HeaderMap) -> Self {
        Self {
            key: key.into(),
            headers,
            route: None,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ReadRequest {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Infallible> {
        Ok(Self {
            key: request_key(&parts.uri).to_owned(),
            headers: parts.headers.clone(),
            route: parts.extensions.get::<MatchedPath>().cloned(),
        })
    }
}

/// The answers kept, by key, and the bytes of their bodies.
#[derive(Default)]
struct Shelf {
    answers: HashMap<String, Kept>,
    bytes: usize,
}

struct Inner {
    max_age: Duration,
    generation: Box<dyn Fn() -> u64 + Send + Sync>,
    kept: Mutex<Shelf>,
}

/// The kept answers of a service's reads. Cheap to clone; clones share what is kept.
#[derive(Clone)]
pub struct ReadCache(Arc<Inner>);

impl std::fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadCache")
            .field("max_age", &self.0.max_age)
            .finish_non_exhaustive()
    }
}

impl ReadCache {
    /// Answers kept for at most `max_age` (zero keeps nothing, but answers still carry an `ETag`
    /// and honour `If-None-Match`), and only while `generation` (a count of the changes this
    /// process made to what the reads show, never decreasing) has not moved.
    pub fn new(max_age: Duration, generation: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        Self(Arc::new(Inner {
            max_age,
            generation: Box::new(generation),
            kept: Mutex::new(Shelf::default()),
        }))
    }

    /// The answer to `request`, a `GET`: the kept one if it is still fresh, else what `read` answers
    /// (kept when it is a 200 with a body of at most [`MAX_KEPT_BODY`] bytes); with its `ETag`, or
    /// 304 when `If-None-Match` names it.
    ///
    /// # Errors
    /// What `read` returns.
    pub async fn answer<E, F>(&self, request: &ReadRequest, read: F) -> Result<Response, E>
    where
        F: Future<Output = Result<Response, E>>,
    {
        let ReadRequest {
            key,
            headers,
            route,
        } = request;
        let generation = (self.0.generation)();
        if let Some(answer) = self.fresh(key, generation, |kept| kept.to_answer(headers)) {
            return Ok(answer);
        }
        let answer = read.await?;
        if answer.status() != StatusCode::OK {
            return Ok(answer);
        }
        let (mut parts, body) = answer.into_parts();
        // A read's answer is a body in memory (serialised JSON): collecting it copies nothing.
        let body = match axum::body::to_bytes(body, usize::MAX).await {
            Ok(body) => body,
            Err(error) => {
                let cause = format!("the answer's body could not be read: {error}");
                return Ok(crate::problem::Problem::internal(cause).into_response());
            }
        };
        let kept = Kept {
            generation,
            at: Instant::now(),
            etag: etag_of(&body),
            content_type: parts.headers.remove(header::CONTENT_TYPE),
            link: parts.headers.remove(header::LINK),
            body,
            route: route.clone(),
        };
        let answer = kept.to_answer(headers);
        if !self.0.max_age.is_zero() && kept.body.len() <= MAX_KEPT_BODY {
            let mut shelf = self.0.kept.lock().unwrap_or_else(|e| e.into_inner());
            if shelf.answers.len() >= MAX_KEPT_ANSWERS
                || shelf.bytes + kept.body.len() > MAX_KEPT_BYTES
            {
                *shelf = Shelf::default();
            }
            shelf.bytes += kept.body.len();
            if let Some(replaced) = shelf.answers.insert(key.clone(), kept) {
                shelf.bytes -= replaced.body.len();
            }
        }
        Ok(answer)
    }

    /// `answer` of the kept answer of `key`, if it was computed at `generation` less than
    /// `max_age` ago.
    fn fresh<T>(&self, key: &str, generation: u64, answer: impl FnOnce(&Kept) -> T) -> Option<T> {
        let shelf = self.0.kept.lock().unwrap_or_else(|e| e.into_inner());
        shelf
            .answers
            .get(key)
            .filter(|kept| kept.generation == generation && kept.at.elapsed() < self.0.max_age)
            .map(answer)
    }

    /// The kept answer to a request that needs nothing but it: a `GET` of a key (its path and
    /// query, as [`ReadCache::answer`] was given it) without credentials (`Authorization`,
    /// `X-User-Id`) whose answer is kept and fresh — 200 with the body, or 304 when
    /// `If-None-Match` names its `ETag`, with the read's route template in its extensions; `None`
    /// for any other request, which goes its whole way.
    fn kept_answer(&self, request: &Request) -> Option<Response> {
        let headers = request.headers();
        if request.method() != Method::GET
            || headers.contains_key(header::AUTHORIZATION)
            || headers.contains_key(crate::auth::USER_HEADER)
        {
            return None;
        }
        let key = request_key(request.uri());
        self.fresh(key, (self.0.generation)(), |kept| {
            let mut answer = kept.to_answer(headers);
            if let Some(route) = &kept.route {
                answer.extensions_mut().insert(route.clone());
            }
            answer
        })
    }
}

/// The key a read's answer is kept under: the request's path and query as it came (a listing's
/// page is in its query).
pub fn request_key(uri: &Uri) -> &str {
    uri.path_and_query()
        .map_or_else(|| uri.path(), http::uri::PathAndQuery::as_str)
}

/// Kept answers served in front of the router (see [`ReadCache`]): a `GET` without credentials
/// whose answer is kept and fresh gets it at once (200, or 304 to a matching `If-None-Match`) —
/// before the routing, the request slot, the time-out, authentication, the rate limit and the
/// handler, which cost more than the answer and can change nothing in it: it is public, and kept
/// only while it is the one the handler would compute. So kept reads go on while the service sheds load, and cost a client
/// nothing of its rate limit. Every other request goes its whole way, as every request does without
/// kept answers (`None`: a service whose reads are not kept).
#[derive(Debug, Clone)]
pub struct KeptAnswerLayer(pub Option<ReadCache>);

impl<S> tower::Layer<S> for KeptAnswerLayer {
    type Service = KeptAnswer<S>;

    fn layer(&self, inner: S) -> KeptAnswer<S> {
        KeptAnswer {
            inner,
            reads: self.0.clone(),
        }
    }
}

/// See [`KeptAnswerLayer`].
#[derive(Debug, Clone)]
pub struct KeptAnswer<S> {
    inner: S,
    reads: Option<ReadCache>,
}

impl<S> tower::Service<Request> for KeptAnswer<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<std::future::Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        match self
            .reads
            .as_ref()
            .and_then(|reads| reads.kept_answer(&request))
        {
            Some(answer) => Either::Left(std::future::ready(Ok(answer))),
            None => Either::Right(self.inner.call(request)),
        }
    }
}

/// 304 Not Modified with `etag`.
fn not_modified(etag: &HeaderValue) -> Response {
    let mut answer = Response::new(Body::empty());
    *answer.status_mut() = StatusCode::NOT_MODIFIED;
    answer.headers_mut().insert(header::ETAG, etag.clone());
    answer
}

impl Kept {
    /// 200 with the body, its `Content-Type`, `Link` and `ETag`, or 304 with the `ETag` alone when
    /// the client's `If-None-Match` names it.
    fn to_answer(&self, request: &HeaderMap) -> Response {
        if none_match(request, &self.etag) {
            return not_modified(&self.etag);
        }
        let mut answer = Response::new(Body::from(self.body.clone()));
        let headers = answer.headers_mut();
        if let Some(value) = &self.content_type {
            headers.insert(header::CONTENT_TYPE, value.clone());
        }
        if let Some(value) = &self.link {
            headers.insert(header::LINK, value.clone());
        }
        headers.insert(header::ETAG, self.etag.clone());
        answer
    }
}

/// A strong entity tag of `body` (the `ETag` a kept read answers with): the first 16 bytes of its
/// SHA-256, in hex, quoted (RFC 9110 section 8.8.3).
pub fn etag_of(body: &[u8]) -> HeaderValue {
    use std::fmt::Write;
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest[..16] {
        let _ = write!(tag, "{byte:02x}");
    }
    tag.push('"');
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

/// Whether the request's `If-None-Match` names `etag` (or is `*`), by the weak comparison RFC 9110
/// section 13.1.2 prescribes for it: `W/"x"` matches `"x"`.
fn none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let ours = etag.as_bytes();
    let values = request.get_all(header::IF_NONE_MATCH);
    // A revalidation sends back the one tag it holds: equal as it stands, nothing to parse.
    if values.iter().any(|value| value.as_bytes() == ours) {
        return true;
    }
    values
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || tag.trim_start_matches("W/").as_bytes() == ours)
}

/// Whether a write's precondition `If-Match` (RFC 9110 section 13.1.1) holds for a resource whose
/// current `ETag` is `etag`: true without the header, for `*`, or when one of its tags is `etag` by
/// the strong comparison (a weak tag `W/"…"` never matches).
pub fn if_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let mut tags = request
        .get_all(header::IF_MATCH)
        .iter()
        .map(|value| value.to_str().unwrap_or_default())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .filter(|tag| !tag.is_empty())
        .peekable();
    if tags.peek().is_none() && !request.contains_key(header::IF_MATCH) {
        return true;
    }
    tags.any(|tag| tag == "*" || tag.as_bytes() == etag.as_bytes())
}

/// The `If-Match` request header of the writes that honour it, for their OpenAPI description
/// (`params(IfMatch)`); the handler reads the headers themselves.
#[derive(Debug, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatch {
    #[doc = "The `ETag` of the copy the change was made to (RFC 9110 section 13.1.1), or `*`: when it is no longer the resource's `ETag` (someone changed it since), nothing changes and the answer is 412. Without it the change applies to the resource as it is."]
    #[param(rename = "If-Match")]
    pub if_match: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::*;

    fn ok(body: &'static str) -> Result<Response, ()> {
        let mut answer = Response::new(Body::from(body));
        answer.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Ok(answer)
    }

    #[test]
    fn if_match_compares_strongly_and_holds_without_the_header() {
        let etag = etag_of(b"[1]");
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                header::IF_MATCH,
                HeaderValue::from_str(value).expect("value"),
            );
            headers
        };
        let ours = etag.to_str().expect("tag").to_owned();
        assert!(if_match(&HeaderMap::new(), &etag));
        assert!(if_match(&headers("*"), &etag));
        assert!(if_match(&headers(&ours), &etag));
        assert!(if_match(&headers(&format!("\"x\", {ours}")), &etag));
        assert!(!if_match(&headers(&format!("W/{ours}")), &etag));
        assert!(!if_match(&headers("\"x\""), &etag));
        assert!(!if_match(&headers(""), &etag));
    }

    fn if_none_match(tag: &HeaderValue) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::IF_NONE_MATCH, tag.clone());
        headers
    }

    async fn text(answer: Response) -> String {
        let bytes = axum::body::to_bytes(answer.into_body(), usize::MAX)
            .await
            .expect("body");
        String::from_utf8(bytes.to_vec()).expect("utf-8")
    }

    #[tokio::test]
    async fn an_answer_is_kept_until_a_change_and_revalidated_with_its_etag() {
        let changes = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&changes);
        let cache = ReadCache::new(Duration::from_secs(60), move || {
            seen.load(Ordering::Relaxed)
        });
        let first = cache
            .answer(&ReadRequest::new("/events", HeaderMap::new()), async {
                ok("[1]")
            })
            .await
            .expect("answer");
        let etag = first.headers()[header::ETAG].clone();
        assert_eq!(text(first).await, "[1]");
        // Kept: the read is not asked again.
        let again = cache
            .answer(&ReadRequest::new("/events", HeaderMap::new()), async {
                ok("[2]")
            })
            .await
            .expect("answer");
        assert_eq!(again.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(text(again).await, "[1]");
        for tag in [etag.clone(), HeaderValue::from_static("*")] {
            let not_modified = cache
                .answer(&ReadRequest::new("/events", if_none_match(&tag)), async {
                    ok("[2]")
                })
                .await
                .expect("answer");
            assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);
            assert_eq!(not_modified.headers()[header::ETAG], etag);
            assert_eq!(text(not_modified).await, "");
        }
        let weak = HeaderValue::from_str(&format!("\"other\", W/{}", etag.to_str().expect("tag")))
            .expect("tag");
        let not_modified = cache
            .answer(&ReadRequest::new("/events", if_none_match(&weak)), async {
                ok("[2]")
            })
            .await
            .expect("answer");
        assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);

        changes.fetch_add(1, Ordering::Relaxed);
        let changed = cache
            .answer(&ReadRequest::new("/events", if_none_match(&etag)), async {
                ok("[2]")
            })
            .await
            .expect("answer");
        assert_eq!(changed.status(), StatusCode::OK);
        assert_ne!(changed.headers()[header::ETAG], etag);
        assert_eq!(text(changed).await, "[2]");
    }

    #[tokio::test]
    async fn a_body_too_large_to_keep_is_served_whole_and_not_kept() {
        let cache = ReadCache::new(Duration::from_secs(60), || 0);
        let large = "x".repeat(MAX_KEPT_BODY + 1);
        let read = |body: String| async move { Ok::<_, ()>(Response::new(Body::from(body))) };
        let first = cache
            .answer(
                &ReadRequest::new("/events", HeaderMap::new()),
                read(large.clone()),
            )
            .await
            .expect("answer");
        assert!(first.headers().contains_key(header::ETAG));
        assert_eq!(text(first).await, large);
        let again = cache
            .answer(
                &ReadRequest::new("/events", HeaderMap::new()),
                read("[]".to_owned()),
            )
            .await
            .expect("answer");
        assert_eq!(text(again).await, "[]");
    }

    #[tokio::test]
    async fn an_answer_is_kept_no_longer_than_its_bound_and_errors_are_not_kept() {
        let cache = ReadCache::new(Duration::from_millis(50), || 0);
        let first = cache
            .answer(&ReadRequest::new("/events", HeaderMap::new()), async {
                ok("[1]")
            })
            .await
            .expect("answer");
        assert_eq!(text(first).await, "[1]");
        tokio::time::sleep(Duration::from_millis(60)).await;
        let later = cache
            .answer(&ReadRequest::new("/events", HeaderMap::new()), async {
                ok("[2]")
            })
            .await
            .expect("answer");
        assert_eq!(text(later).await, "[2]");

        let missing = cache
            .answer(&ReadRequest::new("/events/x", HeaderMap::new()), async {
                let mut answer = Response::new(Body::from("{}"));
                *answer.status_mut() = StatusCode::NOT_FOUND;
                Ok::<_, ()>(answer)
            })
            .await
            .expect("answer");
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert!(missing.headers().get(header::ETAG).is_none());
        let found = cache
            .answer(&ReadRequest::new("/events/x", HeaderMap::new()), async {
                ok("{\"ID\":1}")
            })
            .await
            .expect("answer");
        assert_eq!(text(found).await, "{\"ID\":1}");
    }
}
