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
use myevents_http::server::{Draining, Readiness};
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
    myevents_http::server::store_and_consumer_readiness(
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
