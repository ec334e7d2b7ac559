//! The HTTP middleware stack both services share, and graceful serving.
//!
//! Every response carries an `x-request-id` (the client's, or a fresh UUID), every request runs in a
//! `tracing` span with its method, route template and request id, CORS is answered per
//! [`CorsOrigins`], and unknown routes or methods get problem bodies (404/405).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use myevents_broker::trace::{TRACEPARENT_HEADER, TraceContext};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use myevents_store::StoreHealth;

use crate::auth::{Authenticator, authenticate};
use crate::config::{CorsOrigins, ServerConfig};
use crate::problem::Problem;
use crate::problem::ServerErrorCause;
use crate::problem::{method_not_allowed, route_not_found};
use crate::rate_limit::Limiter;
use crate::tls::TlsTerminator;

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// CORS for the APIs: the methods and headers the frontend and API clients use (`Authorization`
/// included), `Location`, `Link`, `WWW-Authenticate`, `Retry-After`, `x-request-id` and
/// `Idempotent-Replayed` readable by scripts, preflights cached for 10 minutes.
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
        .allow_origin(allow_origin)
        .allow_methods([Method::GET, Method::POST, Method::DELETE, Method::OPTIONS])
        .allow_headers([
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::AUTHORIZATION,
            HeaderName::from_static("x-user-id"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("traceparent"),
            REQUEST_ID,
        ])
        .expose_headers([
            header::LOCATION,
            header::LINK,
            header::WWW_AUTHENTICATE,
            header::RETRY_AFTER,
            REQUEST_ID,
            HeaderName::from_static("idempotent-replayed"),
        ])
        .max_age(Duration::from_secs(600))
}

/// The request's W3C `traceparent` (set by [`with_common_layers`]: the client's trace continued with a
/// span of ours, or a new trace), to store with the messages the request causes.
pub fn trace_parent(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Axum extractor of the request's W3C `traceparent` (see [`trace_parent`]); never rejects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceParent(pub Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for TraceParent {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(trace_parent(&parts.headers)))
    }
}

/// Continues the client's trace (`traceparent`, W3C Trace Context) with a span of ours, or starts a
/// new trace, and puts the result in the request's `traceparent` header (for the handlers) and its
/// extensions (for the request span).
async fn continue_trace(mut request: Request, next: Next) -> Response {
    let ours = request
        .headers()
        .get(TRACEPARENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::new_root, |incoming| incoming.child());
    if let Ok(value) = HeaderValue::from_str(&ours.to_string()) {
        request.headers_mut().insert(TRACEPARENT_HEADER, value);
    }
    request.extensions_mut().insert(ours);
    next.run(request).await
}

/// Turns every error answer that is not JSON into a problem body with the same status: the bare
/// answers of the hardening layers — 413 (body over `HTTP_BODY_LIMIT`, also from `Content-Length`
/// alone), 503 from load shedding or the request time-out (with `Retry-After: 1`) — and axum's
/// `text/plain` rejections (e.g. 400 for a path that is not UTF-8), whose text becomes the `detail`.
/// A JSON answer (a problem body, or `/readyz`'s 503 with its checks) is kept. Every server error is then
/// logged once (see [`log_server_error`]).
async fn problems_for_layer_errors(request: Request, next: Next) -> Response {
    let response = as_problem(next.run(request).await).await;
    log_server_error(&response);
    response
}

/// The answer of [`problems_for_layer_errors`]: `response`, or a problem body with its status.
async fn as_problem(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| {
            v.as_bytes() == crate::problem::PROBLEM_JSON.as_bytes()
                || v.as_bytes().starts_with(b"application/json")
        });
    if is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let problem = match status {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::body_too_large(),
        StatusCode::SERVICE_UNAVAILABLE => Problem::overloaded(),
        _ => {
            // axum's rejections are one short line of text; a longer body is not read, and the
            // status's reason is the detail instead.
            let text = axum::body::to_bytes(response.into_body(), 512)
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
    problem.into_response()
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

async fn shed(_error: tower::BoxError) -> Response {
    // Load shedding: answered in problems_for_layer_errors.
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}

/// Requests the probe routes (health, readiness, version) may have in flight at once, apart from the
/// API's `max_concurrent_requests`, so that probes answer while the API sheds load.
pub const MAX_CONCURRENT_PROBES: usize = 64;

/// How long a probe may take before it answers 503 (5 s).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Reads the whole request body (at most `body_limit` bytes, within `body_read_timeout`) before the
/// request goes on, so that a slow upload holds a connection but no request slot: 408 when the body
/// is too slow, 413 when it is too large, 400 when it breaks off.
async fn read_body_first(
    axum::extract::State((limit, timeout)): axum::extract::State<(usize, Duration)>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(error)) => {
            let too_large =
                std::iter::successors(Some(&error as &(dyn std::error::Error + 'static)), |e| {
                    e.source()
                })
                .any(|e| e.is::<http_body_util::LengthLimitError>());
            if too_large {
                StatusCode::PAYLOAD_TOO_LARGE.into_response()
            } else {
                Problem::malformed(format!("the request body could not be read: {error}"))
                    .into_response()
            }
        }
        Err(_) => Problem::body_timeout().into_response(),
    }
}

/// Load shedding over `limit` requests in flight (503 + `Retry-After`, answered by
/// [`problems_for_layer_errors`]) and a time-out of `timeout` (503).
fn limited(router: Router, limit: usize, timeout: Duration) -> Router {
    router
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(shed))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(limit)),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            timeout,
        ))
}

/// What the shared middleware of [`with_common_layers`] is configured with.
#[derive(Debug, Clone, Copy)]
pub struct Edge<'a> {
    /// Who calls.
    pub auth: &'a Authenticator,
    /// Which origins browsers may call from.
    pub cors: &'a CorsOrigins,
    /// Limits and time-outs.
    pub server: &'a ServerConfig,
}

/// Puts a service's API routes (`api`) and its probe routes (`probes`: health, readiness, version)
/// behind the shared middleware. The API gets authentication by `edge.auth` (see
/// [`crate::auth::authenticate`]: 401 for credentials that do not verify, the caller for the
/// [`crate::auth::Caller`] extractor), the rate limit per caller of `edge.server` (429, see
/// [`crate::rate_limit`]), the 404/405 problem fallbacks, a body read in full
/// first (see [`ServerConfig::body_read_timeout`]; 413 from `Content-Length` alone), load shedding
/// over `max_concurrent_requests` and the request time-out (503 + `Retry-After`); the probes get
/// their own small budget ([`MAX_CONCURRENT_PROBES`]) so that they answer while the API sheds load.
/// Both get compression, metrics by route template (labelled `service`), one log line per server
/// error, request ids, a span per request (`method`,
/// `route`, `request_id`, `trace_id`), W3C trace context, CORS, and problem bodies for every error.
pub fn with_common_layers(
    service: &'static str,
    api: Router,
    probes: Router,
    edge: &Edge<'_>,
) -> Router {
    let Edge {
        auth,
        cors: origins,
        server,
    } = *edge;
    let limiter = server.rate_limit.map(|limit| Limiter::new(service, limit));
    let api = limited(
        api.fallback(route_not_found)
            .method_not_allowed_fallback(method_not_allowed)
            .layer(DefaultBodyLimit::max(server.body_limit))
            .layer(middleware::from_fn_with_state(
                limiter.clone(),
                crate::rate_limit::limit_rate,
            ))
            // Inside the concurrency limit: verifying signatures is work the limit bounds. Before
            // the rate limit, which counts by the token's subject.
            .layer(middleware::from_fn_with_state(auth.clone(), authenticate))
            // Refused credentials count by address, as anonymous requests do.
            .layer(middleware::from_fn_with_state(
                limiter,
                crate::rate_limit::limit_refused_credentials,
            )),
        server.max_concurrent_requests,
        server.request_timeout,
    )
    .layer(middleware::from_fn_with_state(
        (server.body_limit, server.body_read_timeout),
        read_body_first,
    ))
    // A `Content-Length` over the limit is refused before the body is read.
    .layer(RequestBodyLimitLayer::new(server.body_limit));
    api.merge(limited(probes, MAX_CONCURRENT_PROBES, PROBE_TIMEOUT))
        .layer(middleware::from_fn(problems_for_layer_errors))
        .layer(CompressionLayer::new())
        .layer(middleware::from_fn_with_state(
            service,
            crate::metrics::record_http,
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("", MatchedPath::as_str);
                    let request_id = request
                        .headers()
                        .get(REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    let context = request.extensions().get::<TraceContext>().copied();
                    let trace_id = context.map(|c| c.trace_id_hex()).unwrap_or_default();
                    let span = tracing::info_span!("http", method = %request.method(), route,
                        request_id, trace_id);
                    if let Some(context) = context {
                        context.parent(&span);
                    }
                    span
                })
                .on_response(
                    DefaultOnResponse::new()
                        .level(Level::INFO)
                        .latency_unit(tower_http::LatencyUnit::Micros),
                ),
        )
        .layer(middleware::from_fn(continue_trace))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(cors_layer(origins))
}

/// A `201 Created` answer with a `Location` header (the new resource's path) and a JSON body.
pub fn created<T: serde::Serialize>(location: &str, body: &T) -> Response {
    let mut response = crate::json::json_response(StatusCode::CREATED, body);
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// Checks a store for readiness, waiting at most 2 seconds; the error says what is wrong.
///
/// # Errors
/// The store's error, or that it did not answer in time.
pub async fn check_store(health: &dyn StoreHealth) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(2), health.check()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 2 s".to_owned()),
    }
}

/// Whether the service is shutting down (readiness then answers 503). Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Draining(Arc<AtomicBool>);

impl Draining {
    /// Marks the service as shutting down.
    pub fn start(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether it is shutting down.
    pub fn is_draining(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// The readiness of a service with a store and a consumer: `store`, `broker` (the consumer is
/// attached to it) and `shutdown` checks, and how callers are authenticated (`authentication`:
/// `jwt`, or `off`, which a reader of `/readyz` should notice).
pub async fn store_and_consumer_readiness(
    store: &dyn StoreHealth,
    consumer: &myevents_broker::ConsumerStatus,
    draining: &Draining,
    authentication: &'static str,
) -> Response {
    let store = check_store(store).await;
    let broker = if consumer.is_attached() {
        Ok(())
    } else {
        Err("the consumer is not attached to the broker".to_owned())
    };
    let shutdown = if draining.is_draining() {
        Err("shutting down".to_owned())
    } else {
        Ok(())
    };
    readiness(
        &[("store", store), ("broker", broker), ("shutdown", shutdown)],
        authentication,
    )
}

/// The answer of a readiness probe: 200 `{"status":"ready","checks":{…},"authentication":…}` when
/// every check passed, else 503 `{"status":"unavailable","checks":{name: "ok" | reason},…}` naming
/// what is down; `authentication` is the `AUTH_MODE` in force (`jwt` or `off`).
pub fn readiness(checks: &[(&str, Result<(), String>)], authentication: &'static str) -> Response {
    let ready = checks.iter().all(|(_, result)| result.is_ok());
    let checks = checks
        .iter()
        .map(|(name, result)| {
            let text = match result {
                Ok(()) => "ok".to_owned(),
                Err(reason) => reason.clone(),
            };
            ((*name).to_owned(), text)
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "unavailable" },
        checks,
        authentication,
    };
    (status, axum::Json(body)).into_response()
}

/// The body of a readiness answer (see [`readiness`]).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(value_type = String, pattern = "^(ready|unavailable)$")]
    pub status: &'static str,
    /// Each check by name (`store`, `consumer`, `shutdown`): `ok`, or why it failed.
    pub checks: std::collections::BTreeMap<String, String>,
    /// The `AUTH_MODE` in force: `jwt` or `off`.
    #[schema(value_type = String, pattern = "^(jwt|off)$")]
    pub authentication: &'static str,
}

/// A bound listener, and the TLS that terminates on it (HTTPS) if configured.
#[derive(Debug)]
pub struct Listener {
    /// The bound socket.
    pub tcp: TcpListener,
    /// TLS for every connection (see [`crate::tls`]); `None` for plain HTTP.
    pub tls: Option<TlsTerminator>,
}

/// Serves `router` on `listener` (HTTP/1.1, hyper; HTTPS when the listener has TLS, each
/// handshake bounded by `server.header_read_timeout`) until `shutdown` resolves; then marks `draining`
/// (readiness 503), keeps accepting for `server.shutdown_delay`, stops accepting and lets requests in
/// progress finish, waiting at most [`ServerConfig::request_drain_bound`] after the signal.
///
/// Connection limits: at most `server.max_connections` open at once (more wait in the listen
/// backlog), and a connection whose next request's headers do not arrive within
/// `server.header_read_timeout` (a slow client, or an idle keep-alive connection) is closed.
///
/// # Errors
/// None today: a failed `accept` (e.g. out of file descriptors) is logged and retried. The
/// `Result` stays for the callers' sake.
pub async fn serve(
    listener: Listener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    draining: Draining,
    server: &ServerConfig,
) -> std::io::Result<()> {
    let delay = server.shutdown_delay;
    let signalled = std::sync::OnceLock::new();
    // Resolves `delay` after the signal: requests are still accepted meanwhile, so that load
    // balancers can stop sending new ones.
    let stop = async {
        shutdown.await;
        let _ = signalled.set(tokio::time::Instant::now());
        draining.start();
        tracing::info!(
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            "shutting down: readiness is 503; finishing requests in flight"
        );
        tokio::time::sleep(delay).await;
    };
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(server.header_read_timeout);
    let connections = Arc::new(tokio::sync::Semaphore::new(server.max_connections));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let accepting = async {
        loop {
            // The semaphore is never closed; if it were, serving would end as on a signal.
            let Ok(permit) = Arc::clone(&connections).acquire_owned().await else {
                break;
            };
            let (stream, peer) = match listener.tcp.accept().await {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, and go on serving the others.
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            // The peer's address, for the rate limit (as axum's `into_make_service_with_connect_info`).
            let service =
                hyper_util::service::TowerToHyperService::new(tower::ServiceExt::map_request(
                    router.clone(),
                    move |mut request: http::Request<hyper::body::Incoming>| {
                        request
                            .extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        request
                    },
                ));
            let watcher = graceful.watcher();
            let http = http.clone();
            let tls = listener.tls.clone();
            let handshake_timeout = server.header_read_timeout;
            tokio::spawn(async move {
                // A client that goes away mid-request (or mid-handshake) is not the server's error.
                match tls {
                    None => {
                        let io = hyper_util::rt::TokioIo::new(stream);
                        let _ = watcher.watch(http.serve_connection(io, service)).await;
                    }
                    Some(tls) => {
                        let handshake = tls.acceptor().accept(stream);
                        if let Ok(Ok(stream)) =
                            tokio::time::timeout(handshake_timeout, handshake).await
                        {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            let _ = watcher.watch(http.serve_connection(io, service)).await;
                        }
                    }
                }
                drop(permit);
            });
        }
    };
    tokio::select! {
        () = accepting => {}
        () = stop => {}
    }
    drop(listener.tcp);
    let elapsed = signalled
        .get()
        .map_or(Duration::ZERO, tokio::time::Instant::elapsed);
    let timeout = server.request_drain_bound().saturating_sub(elapsed);
    if tokio::time::timeout(timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "requests still in flight at their share of SHUTDOWN_TIMEOUT; stopping anyway"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::{get, post};
    use tower::ServiceExt;

    fn app(server: &ServerConfig) -> Router {
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
    fn layered(routes: Router, server: &ServerConfig) -> Router {
        with_common_layers(
            "test",
            routes,
            Router::new(),
            &Edge {
                auth: &Authenticator::off(),
                cors: &CorsOrigins::Any,
                server,
            },
        )
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
                Request::post("/echo")
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
                Request::post("/echo")
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
                Request::post("/echo")
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
                Request::get("/readyz")
                    .body(Body::empty())
                    .expect("request"),
            )
            .await
            .expect("response");
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_json(ready).await["status"], "unavailable");
        let bare = app
            .oneshot(Request::get("/bare").body(Body::empty()).expect("request"))
            .await
            .expect("response");
        assert_eq!(
            bare.headers()[header::CONTENT_TYPE],
            "application/problem+json"
        );
        assert_eq!(body_json(bare).await["status"], 503);
    }

    #[tokio::test]
    async fn a_path_that_is_not_utf8_gets_a_problem_body() {
        let routes = Router::new().route(
            "/events/{id}",
            get(|axum::extract::Path(id): axum::extract::Path<String>| async move { id }),
        );
        let response = layered(routes, &ServerConfig::ephemeral())
            .oneshot(
                Request::get("/events/%ff")
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
                app.oneshot(Request::get("/slow").body(Body::empty()).expect("request"))
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
            .oneshot(Request::get("/slow").body(Body::empty()).expect("request"))
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
                Request::get("/big")
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

    #[tokio::test]
    async fn shutdown_marks_draining_and_lets_every_request_in_flight_finish() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let draining = Draining::default();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = ServerConfig::ephemeral();
        let serving = tokio::spawn({
            let draining = draining.clone();
            async move {
                let shutdown = async move {
                    let _ = stopped.await;
                };
                serve(
                    Listener {
                        tcp: listener,
                        tls: None,
                    },
                    app(&server),
                    shutdown,
                    draining,
                    &server,
                )
                .await
            }
        });
        let requests: Vec<_> = (0..10)
            .map(|_| {
                tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    stream
                        .write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                        .await
                        .expect("write");
                    let mut answer = String::new();
                    stream.read_to_string(&mut answer).await.expect("read");
                    answer
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).expect("signal");
        for request in requests {
            let answer = request.await.expect("task");
            assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
            assert!(answer.ends_with("done"), "{answer}");
        }
        serving.await.expect("task").expect("served");
        assert!(draining.is_draining());
    }
}
