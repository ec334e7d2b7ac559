//! The probe routes every service serves beside its API, outside authentication and rate limits:
//! `GET /healthz` (liveness), `GET /readyz` (readiness) and `GET /version` (the build), each with
//! its OpenAPI description.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use myevents_broker::ConsumerStatus;
use myevents_http::openapi::PROBES_TAG;
use myevents_http::problem::Problem;
use myevents_http::serve::Draining;
use myevents_platform::build_info::BuildInfo;
use myevents_store::StoreHealth;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// What the probe routes look at.
#[derive(Clone)]
pub(crate) struct Probes {
    pub(crate) store: Arc<dyn StoreHealth>,
    pub(crate) consumer: ConsumerStatus,
    pub(crate) draining: Draining,
    pub(crate) consumer_failing_limit: Duration,
    pub(crate) authentication: &'static str,
    pub(crate) build: BuildInfo,
}

/// The body of `GET /healthz`.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Health {
    /// `ok`, or `failing` when only a restart can help.
    #[schema(value_type = String, pattern = "^(ok|failing)$")]
    status: &'static str,
    /// Why it is failing.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    reason: Option<String>,
}

/// The probe routes (their state applied by the host).
pub(crate) fn routes() -> OpenApiRouter<Probes> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(version))
}

/// Liveness: 200 unless the consume loop has kept failing for longer than `CONSUMER_FAILING_LIMIT`,
/// when only a restart of the process can help.
#[utoipa::path(get, path = "/healthz", operation_id = "getHealth", tag = PROBES_TAG,
    responses(
        (status = 200, description = "Alive", body = Health, example = json!({"status": "ok"})),
        (status = 503, description = "The consume loop has kept failing (restart the process), or the probes are overloaded",
            content((Health = "application/json"), (Problem = "application/problem+json"))),
    ))]
async fn healthz(State(probes): State<Probes>) -> Response {
    match probes.consumer.failing_for() {
        Some(failing) if failing > probes.consumer_failing_limit => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "failing",
                reason: Some(format!(
                    "the consume loop has kept ending for {} s (CONSUMER_FAILING_LIMIT is {} s)",
                    failing.as_secs(),
                    probes.consumer_failing_limit.as_secs()
                )),
            }),
        )
            .into_response(),
        _ => Json(Health {
            status: "ok",
            reason: None,
        })
        .into_response(),
    }
}

/// Readiness: the store answers, the consumer is attached to the broker, no shutdown under way;
/// `authentication` says which `AUTH_MODE` is in force.
#[utoipa::path(get, path = "/readyz", operation_id = "getReadiness", tag = PROBES_TAG,
    responses(
        (status = 200, description = "Ready", body = Readiness,
            example = json!({"status": "ready", "checks": {"consumer": "ok", "store": "ok"}, "authentication": "jwt"})),
        (status = 503, description = "Not ready: the failed checks name the reason; or the probes are overloaded",
            content((Readiness = "application/json"), (Problem = "application/problem+json"))),
    ))]
async fn readyz(State(probes): State<Probes>) -> Response {
    store_and_consumer_readiness(
        probes.store.as_ref(),
        &probes.consumer,
        &probes.draining,
        probes.authentication,
    )
    .await
}

/// The build: service, version and git commit.
#[utoipa::path(get, path = "/version", operation_id = "getVersion", tag = PROBES_TAG,
    responses((status = 200, description = "The build", body = BuildInfo)))]
async fn version(State(probes): State<Probes>) -> Json<BuildInfo> {
    Json(probes.build)
}

/// Checks a store for readiness, waiting at most 2 seconds; the error says what is wrong.
///
/// # Errors
/// The store's error, or that it did not answer in time.
async fn check_store(health: &dyn StoreHealth) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(2), health.check()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within 2 s".to_owned()),
    }
}

/// The readiness of a service with a store and a consumer: `store`, `broker` (the consumer is
/// attached to it) and `shutdown` checks, and how callers are authenticated (`authentication`:
/// `jwt`, or `off`, which a reader of `/readyz` should notice).
async fn store_and_consumer_readiness(
    store: &dyn StoreHealth,
    consumer: &ConsumerStatus,
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
fn readiness(checks: &[(&str, Result<(), String>)], authentication: &'static str) -> Response {
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
pub(crate) struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(value_type = String, pattern = "^(ready|unavailable)$")]
    pub status: &'static str,
    /// Each check by name (`store`, `consumer`, `shutdown`): `ok`, or why it failed.
    pub checks: std::collections::BTreeMap<String, String>,
    /// The `AUTH_MODE` in force: `jwt` or `off`.
    #[schema(value_type = String, pattern = "^(jwt|off)$")]
    pub authentication: &'static str,
}
