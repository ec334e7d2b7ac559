//! The HTTP middleware stack both services share, and graceful serving.
//!
//! Every response carries an `x-request-id` (the client's, or a fresh UUID), every request runs in a
//! `tracing` span with its method, route template and request id, CORS is answered per
//! [`CorsOrigins`], and unknown routes or methods get problem bodies (404/405).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderName, HeaderValue, Method, StatusCode, header};
use tokio::net::TcpListener;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, TraceLayer};
use tracing::Level;

use myevents_store::StoreHealth;

use crate::config::CorsOrigins;
use crate::problem::{method_not_allowed, route_not_found};

/// The request id header.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// CORS for the APIs: the methods and headers the frontend and API clients use, `Location`, `Link` and
/// `x-request-id` readable by scripts, preflights cached for 10 minutes.
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
            HeaderName::from_static("x-user-id"),
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("traceparent"),
            REQUEST_ID,
        ])
        .expose_headers([header::LOCATION, header::LINK, REQUEST_ID])
        .max_age(Duration::from_secs(600))
}

/// Adds the 404/405 problem fallbacks and the shared middleware to a service's router.
pub fn with_common_layers(router: Router, origins: &CorsOrigins) -> Router {
    router
        .fallback(route_not_found)
        .method_not_allowed_fallback(method_not_allowed)
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
                    tracing::info_span!("http", method = %request.method(), route, request_id)
                })
                .on_response(DefaultOnResponse::new().level(Level::INFO)),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(cors_layer(origins))
}

/// A `201 Created` answer with a `Location` header (the new resource's path) and a JSON body.
pub fn created<T: serde::Serialize>(location: &str, body: &T) -> Response {
    let mut response = (StatusCode::CREATED, axum::Json(body)).into_response();
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

/// The readiness of a service with a store and a consumer: `store` and `consumer` checks.
pub async fn store_and_consumer_readiness(
    store: &dyn StoreHealth,
    consumer: &myevents_broker::ConsumerStatus,
) -> Response {
    let store = check_store(store).await;
    let consumer = if consumer.is_attached() {
        Ok(())
    } else {
        Err("not attached to the broker".to_owned())
    };
    readiness(&[("store", store), ("consumer", consumer)])
}

/// The answer of a readiness probe: 200 `{"status":"ready","checks":{…}}` when every check passed,
/// else 503 `{"status":"unavailable","checks":{name: "ok" | reason}}` naming what is down.
pub fn readiness(checks: &[(&str, Result<(), String>)]) -> Response {
    let ready = checks.iter().all(|(_, result)| result.is_ok());
    let details: serde_json::Map<String, serde_json::Value> = checks
        .iter()
        .map(|(name, result)| {
            let text = match result {
                Ok(()) => "ok".to_owned(),
                Err(reason) => reason.clone(),
            };
            ((*name).to_owned(), serde_json::Value::String(text))
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::json!({
        "status": if ready { "ready" } else { "unavailable" },
        "checks": details,
    });
    (status, axum::Json(body)).into_response()
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and lets requests in
/// progress finish.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
}
