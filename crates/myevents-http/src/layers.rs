//! The HTTP middleware stack both services share.
//!
//! Every response carries an `x-request-id` (the client's, or a fresh UUID), every request runs in a
//! `tracing` span with its method, route template and request id, CORS is answered per
//! [`CorsOrigins`], and unknown routes or methods get problem bodies (404/405).

use std::sync::Arc;
use std::time::Duration;

use std::convert::Infallible;
use std::future::Future;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use futures_util::future::Either;
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use myevents_platform::trace::TraceContext;
use tower::layer::util::{Identity, Stack};
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{OnResponse, TraceLayer};

use crate::auth::{AuthenticateLayer, Authenticator};
use crate::cache::{KeptAnswerLayer, ReadCache};
use crate::config::{CorsOrigins, ServerConfig};
use crate::metrics::HttpMetrics;
use crate::problem::{Problem, ServerErrorCause, method_not_allowed, route_not_found};
use crate::rate_limit::Limiter;
use crate::trace::continue_trace;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// CORS for the APIs: the methods and headers the frontend and API clients use (`PATCH`,
/// `Authorization`, `If-None-Match` and `If-Match` included), `Location`, `Link`, `WWW-Authenticate`, `Retry-After`, `ETag`,
/// `x-request-id` and `Idempotent-Replayed` readable by scripts, preflights cached for 10 minutes.
pub fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    let allow_origin = match origins {
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(
            list.iter()
                .filter_map(|o| o.parse().ok())
                .collect::<Vec<_>>(),
        ),
    };
    CorsLayer::new()
        // On every answer, not only CORS ones: see `BrowserCorsLayer`.
        .vary([])
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::AUTHORIZATION,
            crate::auth::USER_HEADER,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("traceparent"),
            header::IF_NONE_MATCH,
            header::IF_MATCH,
            REQUEST_ID,
        ])
        .expose_headers([
            header::LOCATION,
            header::LINK,
            header::WWW_AUTHENTICATE,
            header::RETRY_AFTER,
            header::ETAG,
            REQUEST_ID,
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(Duration::from_secs(600))
}

/// `Vary` of every answer: a CORS answer depends on these request headers (RFC 9110 section 12.5.5),
/// so that a cache keeps the answers to browsers (which send `Origin`) and to other clients apart.
const VARY_CORS: HeaderValue = HeaderValue::from_static(
    "origin, access-control-request-method, access-control-request-headers",
);

/// [`cors_layer`]'s CORS for the requests it applies to — those with an `Origin` header, which
/// browsers send on every cross-origin request (the Fetch standard, section 3.2), and every
/// `OPTIONS` (a preflight) — and nothing for the others: the CORS headers mean nothing to a client
/// that sends no `Origin`, and building them per request cost a tenth of a read. The CORS service
/// is made for the requests it applies to, so that the others do not copy its rules either (the
/// stack is cloned for every connection). The `Vary` CORS answers depend on is [`VARY_CORS`], on every
/// answer.
#[derive(Debug, Clone)]
struct BrowserCorsLayer(Arc<CorsLayer>);

impl<S> tower::Layer<S> for BrowserCorsLayer {
    type Service = BrowserCors<S>;

    fn layer(&self, inner: S) -> BrowserCors<S> {
        // `tower-http` checks the rules (no credentials with a wildcard) when it makes a CORS
        // service, by panicking: here once, as the stack is built, not at a browser's request.
        let _checked = tower::Layer::layer(&*self.0, ());
        BrowserCors {
            inner,
            cors: Arc::clone(&self.0),
        }
    }
}

/// See [`BrowserCorsLayer`].
#[derive(Debug, Clone)]
struct BrowserCors<S> {
    inner: S,
    cors: Arc<CorsLayer>,
}

impl<S, B> tower::Service<Request> for BrowserCors<S>
where
    S: tower::Service<Request, Response = http::Response<B>> + Clone,
    B: Default,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future = Either<tower_http::cors::ResponseFuture<S::Future>, S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == Method::OPTIONS || request.headers().contains_key(header::ORIGIN) {
            // The service made ready goes to the CORS service; a clone of it stays for the next.
            let clone = self.inner.clone();
            let ready = std::mem::replace(&mut self.inner, clone);
            Either::Left(tower::Layer::layer(&*self.cors, ready).call(request))
        } else {
            Either::Right(self.inner.call(request))
        }
    }
}

/// Around the router, inside the request's span: turns every error answer that is not JSON into a
/// problem body with the same status — the bare answers of the hardening layers: 413 (body over
/// `HTTP_BODY_LIMIT`, also from `Content-Length` alone), 503 from load shedding or the request
/// time-out (with `Retry-After: 1`) — and axum's `text/plain` rejections (e.g. 400 for a path that
/// is not UTF-8), whose text becomes the `detail`; a JSON answer (a problem body, or `/readyz`'s 503
/// with its checks) is kept. Then logs every server error once (see [`log_server_error`]) and counts
/// the answer in the [`HttpMetrics`] of its service. One step written out, not `from_fn`
/// middleware: it runs for every request.
#[derive(Debug, Clone)]
struct AnswerLayer {
    service: &'static str,
    metrics: &'static HttpMetrics,
}

impl<S> tower::Layer<S> for AnswerLayer {
    type Service = Answer<S>;

    fn layer(&self, inner: S) -> Answer<S> {
        Answer {
            inner,
            service: self.service,
            metrics: self.metrics,
        }
    }
}

/// See [`AnswerLayer`].
#[derive(Debug, Clone)]
struct Answer<S> {
    inner: S,
    service: &'static str,
    metrics: &'static HttpMetrics,
}

impl<S> tower::Service<Request> for Answer<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = crate::Boxed;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let method = crate::metrics::method_label(request.method());
        let started = std::time::Instant::now();
        let answer = match host_refused(&request) {
            None => Either::Left(self.inner.call(request)),
            Some(problem) => Either::Right(problem),
        };
        let (service, metrics) = (self.service, self.metrics);
        Box::pin(async move {
            let answer = match answer {
                Either::Left(answer) => as_problem(answer.await?).await,
                Either::Right(problem) => problem.into_response(),
            };
            log_server_error(&answer);
            metrics.record(service, method, &answer, started.elapsed());
            Ok(answer)
        })
    }
}

/// Why an HTTP/1.1 request is refused for its `Host` (400): RFC 9112 section 3.2 makes a server
/// answer 400 to one without a `Host` header or with more than one. (An HTTP/2 request names its
/// host in `:authority`; HTTP/1.0 has no such rule.)
fn host_refused(request: &Request) -> Option<Problem> {
    if request.version() != http::Version::HTTP_11 {
        return None;
    }
    let hosts = request.headers().get_all(header::HOST).iter().count();
    let detail = match hosts {
        1 => return None,
        0 => "an HTTP/1.1 request names its host in a Host header (RFC 9112 section 3.2); it has none"
            .to_owned(),
        _ => format!(
            "an HTTP/1.1 request names its host in one Host header (RFC 9112 section 3.2); it has {hosts}"
        ),
    };
    Some(Problem::status(StatusCode::BAD_REQUEST, detail))
}

/// The answer of [`Answer`]: `response`, or a problem body with its status.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes() == crate::problem::PROBLEM_JSON.as_bytes()
                || v.as_bytes().starts_with(b"application/json")
        });
    if is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let problem = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::body_too_large(),
        StatusCode::SERVICE_UNAVAILABLE => Problem::overloaded(),
        _ => {
            // axum's rejections are one short line of text; a longer body is not read, and the
            // status's reason is the detail instead.
            let text = axum::body::to_bytes(body, 512)
                .await
                .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
                .unwrap_or_default();
            let reason = status.canonical_reason().unwrap_or("error");
            Problem::status(
                status,
                if text.is_empty() {
                    reason.to_owned()
                } else {
                    text
                },
            )
        }
    };
    // The route template, a server error's cause and the headers the problem does not set (the
    // `Allow` of a 405, say) stay with the answer.
    let mut answer = problem.into_response();
    answer.extensions_mut().extend(parts.extensions);
    let set: Vec<HeaderName> = answer.headers().keys().cloned().collect();
    let mut name = None;
    for (next, value) in parts.headers {
        name = next.or(name);
        if let Some(name) = &name
            && *name != header::CONTENT_TYPE
            && *name != header::CONTENT_LENGTH
            && !set.contains(name)
        {
            answer.headers_mut().append(name.clone(), value);
        }
    }
    answer
}

/// Logs a server error (5xx) that has a cause once, in the request's span, with the cause its
/// [`Problem`] carried (see [`ServerErrorCause`]) and that cause's chain of sources. A 503 without
/// one (load shedding, a time-out, readiness) is expected under load and logged at debug level.
fn log_server_error(response: &Response) {
    let status = response.status();
    if !status.is_server_error() {
        return;
    }
    if let Some(cause) = response.extensions().get::<ServerErrorCause>() {
        tracing::error!(status = status.as_u16(), error = %cause, "request failed");
    } else {
        tracing::debug!(status = status.as_u16(), "request not served");
    }
}

/// Requests the probe routes (health, readiness, version) may have in flight at once, apart from the
/// API's `max_concurrent_requests`, so that probes answer while the API sheds load.
pub const MAX_CONCURRENT_PROBES: usize = 64;

/// How long a probe may take before it answers 503 (5 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the whole request body (at most `limit` bytes, within `timeout`) before the request goes
/// on, so that a slow upload holds a connection but no request slot: 408 when the body is too slow,
/// 413 when it is too large, 400 when it breaks off. A request without a body (most reads) goes on
/// at once, without a future of its own.
#[derive(Debug, Clone, Copy)]
struct ReadBodyFirstLayer {
    limit: usize,
    timeout: Duration,
}

impl<S> tower::Layer<S> for ReadBodyFirstLayer {
    type Service = ReadBodyFirst<S>;

    fn layer(&self, inner: S) -> ReadBodyFirst<S> {
        ReadBodyFirst {
            inner,
            limit: self.limit,
            timeout: self.timeout,
        }
    }
}

/// See [`ReadBodyFirstLayer`].
#[derive(Debug, Clone)]
struct ReadBodyFirst<S> {
    inner: S,
    limit: usize,
    timeout: Duration,
}

impl<S> tower::Service<Request> for ReadBodyFirst<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<S::Future, crate::Boxed>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if axum::body::HttpBody::is_end_stream(request.body()) {
            return Either::Left(self.inner.call(request));
        }
        // The request goes on once its body is read: the inner layers (the request slot among
        // them) are asked for readiness then, by a clone of them.
        let (inner, limit, timeout) = (self.inner.clone(), self.limit, self.timeout);
        let (parts, body) = request.into_parts();
        Either::Right(Box::pin(async move {
            match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
                Ok(Ok(bytes)) => {
                    inner
                        .oneshot(Request::from_parts(parts, axum::body::Body::from(bytes)))
                        .await
                }
                Ok(Err(error)) => {
                    let too_large = std::iter::successors(
                        Some(&error as &(dyn std::error::Error + 'static)),
                        |e| e.source(),
                    )
                    .any(|e| e.is::<http_body_util::LengthLimitError>());
                    Ok(if too_large {
                        StatusCode::PAYLOAD_TOO_LARGE.into_response()
                    } else {
                        Problem::malformed(format!("the request body could not be read: {error}"))
                            .into_response()
                    })
                }
                Err(_) => Ok(Problem::body_timeout().into_response()),
            }
        }))
    }
}

/// What answers a request that load shedding refused: a bare 503, turned into a problem with
/// `Retry-After` by [`Answer`].
type Shed = fn(BoxError) -> std::future::Ready<Response>;

fn shed(_error: BoxError) -> std::future::Ready<Response> {
    std::future::ready(StatusCode::SERVICE_UNAVAILABLE.into_response())
}

/// The layers of [`limits`], outermost first.
type Limits = Stack<
    GlobalConcurrencyLimitLayer,
    Stack<LoadShedLayer, Stack<HandleErrorLayer<Shed, ()>, Stack<TimeoutLayer, Identity>>>,
>;

/// A time-out of `timeout` (503) and load shedding over `limit` requests in flight (503 +
/// `Retry-After`, answered by [`Answer`]).
fn limits(limit: usize, timeout: Duration) -> ServiceBuilder<Limits> {
    ServiceBuilder::new()
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
        .layer(HandleErrorLayer::new(shed as Shed))
        .load_shed()
        .layer(GlobalConcurrencyLimitLayer::new(limit))
}

/// Per route, around everything else of the route: its template (axum's [`MatchedPath`]) put in
/// the answer's extensions, where the stack around the router (metrics, the access log) finds it.
#[derive(Debug, Clone, Copy)]
struct RecordRouteLayer;

impl<S> tower::Layer<S> for RecordRouteLayer {
    type Service = RecordRoute<S>;

    fn layer(&self, inner: S) -> RecordRoute<S> {
        RecordRoute(inner)
    }
}

/// See [`RecordRouteLayer`].
#[derive(Debug, Clone)]
struct RecordRoute<S>(S);

impl<S, B> tower::Service<Request> for RecordRoute<S>
where
    S: tower::Service<Request, Response = http::Response<B>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<B>;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<http::Response<B>, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let route = request.extensions().get::<MatchedPath>().cloned();
        let answer = self.0.call(request);
        Box::pin(async move {
            let mut answer = answer.await?;
            if let Some(route) = route {
                answer.extensions_mut().insert(route);
            }
            Ok(answer)
        })
    }
}

/// The access log: one line per answer, in the request's span (`method`, `request_id`,
/// `trace_id`), with `status`, `route` (the route template; `unmatched` for unknown routes) and
/// `latency_us` (microseconds from the request to the answer's head), at info level.
#[derive(Debug, Clone, Copy)]
struct AccessLog;

impl<B> OnResponse<B> for AccessLog {
    fn on_response(self, answer: &http::Response<B>, latency: Duration, _span: &tracing::Span) {
        let route = answer
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", MatchedPath::as_str);
        tracing::info!(
            status = answer.status().as_u16(),
            route,
            latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX),
            "finished processing request"
        );
    }
}

/// A service's whole HTTP application, middleware included, as [`with_common_layers`] builds it:
/// what [`crate::serve::serve`] serves, and what tests call without a socket (`tower::ServiceExt`).
/// Cheap to clone (one clone per connection, see [`crate::serve::serve`]).
pub type App = tower::util::BoxCloneSyncService<Request, Response, Infallible>;

/// What the shared middleware of [`with_common_layers`] is configured with.
#[derive(Debug, Clone, Copy)]
pub struct Edge<'a> {
    /// Who calls.
    pub auth: &'a Authenticator,
    /// Which origins browsers may call from.
    pub cors: &'a CorsOrigins,
    /// Limits and time-outs.
    pub server: &'a ServerConfig,
    /// The series the stack counts in.
    pub metrics: &'static HttpMetrics,
    /// The service's kept read answers, if it keeps any: they are served in front of the router
    /// ([`KeptAnswerLayer`]).
    pub reads: Option<&'a ReadCache>,
}

/// Puts a service's API routes (`api`) and its probe routes (`probes`: health, readiness, version)
/// behind the shared middleware. The API gets authentication by `edge.auth` (see
/// [`AuthenticateLayer`]: 401 for credentials that do not verify, the caller for the
/// [`crate::auth::Caller`] extractor), the rate limit per caller of `edge.server` (429, see
/// [`crate::rate_limit`]), the 404/405 problem fallbacks, a body read in full
/// first (see [`ServerConfig::body_read_timeout`]; 413 from `Content-Length` alone), load shedding
/// over `max_concurrent_requests` and the request time-out (503 + `Retry-After`); the answers
/// `edge.reads` keeps are served in front of the router, before all of these (see
/// [`KeptAnswerLayer`]); the probes get
/// their own small budget ([`MAX_CONCURRENT_PROBES`]) so that they answer while the API sheds load.
/// Both get compression, metrics by route template (labelled `service`), one log line per server
/// error, request ids, a span per request (`method`, `request_id`, `trace_id`) with an access log
/// line (`AccessLog`), W3C trace context, CORS, and problem bodies for every error.
pub fn with_common_layers(
    service: &'static str,
    api: Router,
    probes: Router,
    edge: &Edge<'_>,
) -> App {
    let Edge {
        auth,
        cors: origins,
        server,
        metrics,
        reads,
    } = *edge;
    let limiter = server
        .rate_limit
        .map(|limit| Limiter::new(limit, metrics.rate_limited.with_label_values(&[service])));
    // Each route gets one layer (one boxed service, cloned per request); the layers that do not
    // depend on the route are one stack around the router, built once.
    let api = api
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(RecordRouteLayer)
                // A `Content-Length` over the limit is refused before the body is read.
                .layer(RequestBodyLimitLayer::new(server.body_limit))
                .map_request(|request: http::Request<_>| request.map(axum::body::Body::new))
                .layer(ReadBodyFirstLayer {
                    limit: server.body_limit,
                    timeout: server.body_read_timeout,
                })
                .layer(limits(
                    server.max_concurrent_requests,
                    server.request_timeout,
                ))
                // Refused credentials count by address, as anonymous requests do.
                .option_layer(limiter.clone().map(|limiter| {
                    middleware::from_fn_with_state(
                        limiter,
                        crate::rate_limit::limit_refused_credentials,
                    )
                }))
                // Inside the concurrency limit: verifying signatures is work the limit bounds.
                // Before the rate limit, which counts by the token's subject.
                .layer(AuthenticateLayer(auth.clone()))
                .option_layer(limiter.map(|limiter| {
                    middleware::from_fn_with_state(limiter, crate::rate_limit::limit_rate)
                }))
                .layer(DefaultBodyLimit::max(server.body_limit)),
        );
    let probes = probes.layer(
        ServiceBuilder::new()
            .layer(RecordRouteLayer)
            .layer(limits(MAX_CONCURRENT_PROBES, PROBE_TIMEOUT)),
    );
    let around = ServiceBuilder::new()
        // Preflights, which CORS answers itself, included.
        .layer(SetResponseHeaderLayer::appending(header::VARY, VARY_CORS))
        .layer(BrowserCorsLayer(Arc::new(cors_layer(origins))))
        // CORS answers preflights itself, with an empty body of the type below it.
        .map_response(|answer: http::Response<_>| answer.map(axum::body::Body::new))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .map_request(continue_trace)
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    let context = request.extensions().get::<TraceContext>().copied();
                    let trace_id = context.map(|c| c.trace_id_ascii());
                    let trace_id = trace_id
                        .as_ref()
                        .and_then(|ascii| std::str::from_utf8(ascii).ok())
                        .unwrap_or_default();
                    // The route is known once the router matched one: the access log tells it.
                    let span = tracing::info_span!(
                        "http",
                        method = request.method().as_str(),
                        request_id,
                        trace_id
                    );
                    if let Some(context) = context {
                        context.parent(&span);
                    }
                    span
                })
                .on_response(AccessLog)
                // Server errors are logged once, with their cause, by `Answer`
                // (an expected 503 — readiness, load shedding — at debug level), not here again.
                .on_failure(()),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CompressionLayer::new())
        .layer(AnswerLayer { service, metrics })
        // In front of the router: a kept answer needs no route, and carries its route template.
        .layer(KeptAnswerLayer(reads.cloned()))
        .service(api.merge(probes));
    App::new(around)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    fn app(server: &ServerConfig) -> App {
        let routes = Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    "done"
                }),
            )
            .route("/echo", post(|body: axum::body::Bytes| async move { body }))
            .route("/big", get(|| async { "x".repeat(10_000) }));
        layered(routes, server)
    }

    /// `routes` behind the shared middleware, authentication off, any origin.
    fn layered(routes: Router, server: &ServerConfig) -> App {
        with_common_layers(
            "test",
            routes,
            Router::new(),
            &Edge {
                auth: &Authenticator::off(),
                cors: &CorsOrigins::Any,
                server,
                metrics: HttpMetrics::registered(),
                reads: None,
            },
        )
    }

    /// A request as an HTTP/1.1 client starts one: with its `Host`.
    fn request(method: &str, uri: &str) -> http::request::Builder {
        Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "localhost")
    }

    #[tokio::test]
    async fn an_http_1_1_request_without_one_host_gets_a_400_problem() {
        let app = app(&ServerConfig::ephemeral());
        let call = |request: http::request::Builder| {
            let app = app.clone();
            async move {
                app.oneshot(request.body(Body::empty()).expect("request"))
                    .await
                    .expect("response")
            }
        };
        let none = call(Request::get("/big")).await;
        assert_eq!(none.status(), StatusCode::BAD_REQUEST);
        let problem = body_json(none).await;
        assert!(
            problem["detail"]
                .as_str()
                .expect("detail")
                .contains("it has none"),
            "{problem}"
        );
        let two = call(request("GET", "/big").header(header::HOST, "elsewhere.example")).await;
        assert_eq!(two.status(), StatusCode::BAD_REQUEST);
        assert_eq!(
            two.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert!(
            two.headers().contains_key(REQUEST_ID),
            "answered inside the stack"
        );
        assert_eq!(call(request("GET", "/big")).await.status(), StatusCode::OK);
        let http_1_0 = Request::get("/big").version(http::Version::HTTP_10);
        assert_eq!(
            call(http_1_0).await.status(),
            StatusCode::OK,
            "HTTP/1.0 needs no Host"
        );
    }

    async fn body_json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        serde_json::from_slice(&bytes).expect("json")
    }

    #[tokio::test]
    async fn a_body_over_the_limit_gets_a_413_problem() {
        let server = ServerConfig {
            body_limit: 1024,
            ..ServerConfig::ephemeral()
        };
        let response = app(&server)
            .oneshot(
                request("POST", "/echo")
                    .body(Body::from(vec![b'a'; 4096]))
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(body_json(response).await["status"], 413);
        let small = app(&server)
            .oneshot(
                request("POST", "/echo")
                    .body(Body::from("ok"))
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(small.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_content_length_over_the_limit_gets_413_before_any_body_arrives() {
        let server = ServerConfig {
            body_limit: 1024,
            ..ServerConfig::ephemeral()
        };
        // A body that never arrives: only the header can answer in time.
        let never = futures_util::stream::pending::<Result<axum::body::Bytes, std::io::Error>>();
        let response = tokio::time::timeout(
            Duration::from_secs(1),
            app(&server).oneshot(
                request("POST", "/echo")
                    .header(header::CONTENT_LENGTH, "10000000")
                    .body(Body::from_stream(never))
                    .expect("request"),
            ),
        )
        .await
        .expect("answered within 1 s")
        .expect("response");
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(body_json(response).await["status"], 413);
    }

    #[tokio::test]
    async fn an_answer_with_its_own_body_keeps_it_and_a_bare_503_becomes_a_problem() {
        let routes = Router::new()
            .route(
                "/readyz",
                get(|| async {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        axum::Json(serde_json::json!({"status": "unavailable"})),
                    )
                }),
            )
            .route("/bare", get(|| async { StatusCode::SERVICE_UNAVAILABLE }));
        let app = layered(routes, &ServerConfig::ephemeral());
        let ready = app
            .clone()
            .oneshot(
                request("GET", "/readyz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_json(ready).await["status"], "unavailable");
        let bare = app
            .oneshot(
                request("GET", "/bare")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(
            bare.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(body_json(bare).await["status"], 503);
    }

    /// Counts the error-level events of the thread it is the default subscriber of.
    struct ErrorCount(std::sync::Arc<std::sync::atomic::AtomicUsize>);

    impl tracing::Subscriber for ErrorCount {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            if *event.metadata().level() == tracing::Level::ERROR {
                self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }

    #[tokio::test]
    async fn an_expected_503_is_not_logged_as_an_error_and_a_caused_one_once() {
        let routes = Router::new()
            .route("/bare", get(|| async { StatusCode::SERVICE_UNAVAILABLE }))
            .route(
                "/caused",
                get(|| async { Problem::internal("the disk is gone") }),
            );
        let app = layered(routes, &ServerConfig::ephemeral());
        let errors = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let _default = tracing::subscriber::set_default(ErrorCount(errors.clone()));
        let bare = app
            .clone()
            .oneshot(
                request("GET", "/bare")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(bare.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(errors.load(std::sync::atomic::Ordering::Relaxed), 0);
        let caused = app
            .oneshot(
                request("GET", "/caused")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(caused.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(errors.load(std::sync::atomic::Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn an_unsupported_method_gets_a_problem_body_that_keeps_allow() {
        let probes = Router::new().route("/healthz", get(|| async { "ok" }));
        let app = with_common_layers(
            "test",
            Router::new(),
            probes,
            &Edge {
                auth: &Authenticator::off(),
                cors: &CorsOrigins::Any,
                server: &ServerConfig::ephemeral(),
                metrics: HttpMetrics::registered(),
                reads: None,
            },
        );
        let response = app
            .oneshot(
                request("TRACE", "/healthz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(response.headers()[header::ALLOW], "GET,HEAD");
        assert_eq!(body_json(response).await["status"], 405);
    }

    #[tokio::test]
    async fn a_path_that_is_not_utf8_gets_a_problem_body() {
        let routes = Router::new().route(
            "/events/{id}",
            get(|axum::extract::Path(id): axum::extract::Path<String>| async move { id }),
        );
        let response = layered(routes, &ServerConfig::ephemeral())
            .oneshot(
                request("GET", "/events/%ff")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert!(response.status().is_client_error());
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        let body = body_json(response).await;
        assert!(
            body["detail"].as_str().is_some_and(|d| d.contains("UTF-8")),
            "{body}"
        );
    }

    #[tokio::test]
    async fn requests_over_the_concurrency_limit_are_shed_with_503_and_retry_after() {
        let server = ServerConfig {
            max_concurrent_requests: 2,
            ..ServerConfig::ephemeral()
        };
        let app = app(&server);
        let requests = (0..6).map(|_| {
            let app = app.clone();
            async move {
                app.oneshot(
                    request("GET", "/slow")
                        .body(Body::empty())
                        .expect("request"),
                )
                .await
                .expect("response")
            }
        });
        let responses = futures_util::future::join_all(requests).await;
        let ok = responses
            .iter()
            .filter(|r| r.status() == StatusCode::OK)
            .count();
        assert_eq!(ok, 2, "two at a time");
        for response in responses
            .into_iter()
            .filter(|r| r.status() != StatusCode::OK)
        {
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[header::RETRY_AFTER], "1");
            assert_eq!(body_json(response).await["status"], 503);
        }
    }

    #[tokio::test]
    async fn a_request_over_the_time_out_gets_503() {
        let server = ServerConfig {
            request_timeout: Duration::from_millis(50),
            ..ServerConfig::ephemeral()
        };
        let response = app(&server)
            .oneshot(
                request("GET", "/slow")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
    }

    #[tokio::test]
    async fn answers_are_compressed_for_clients_that_accept_gzip() {
        let response = app(&ServerConfig::ephemeral())
            .oneshot(
                request("GET", "/big")
                    .header(header::ACCEPT_ENCODING, "gzip")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "gzip");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("body");
        assert!(bytes.len() < 1000, "{} bytes", bytes.len());
    }
}
