//! The OpenAPI 3.1 document of a service, and the routes that publish it.
//!
//! A service documents its own routes with `utoipa` (`#[utoipa::path]` on each handler, registered
//! through `utoipa_axum::routes!`, so a route cannot exist without its documentation); [`finish`]
//! then adds what the shared middleware of [`crate::layers::with_common_layers`] answers on every
//! route, so that the document states every status a client can meet:
//!
//! - on the API routes: 400 (malformed request, query, header or token), 401 (`WWW-Authenticate`,
//!   RFC 6750), 408 (request body too slow), 413 (body over `HTTP_BODY_LIMIT`), 415 on routes that
//!   read a body, 429 (`Retry-After`), 500, 503 (`Retry-After`: overloaded, time-out, a dependency
//!   down); on the probe and documentation routes: 503;
//! - every answer carries `x-request-id`; every error answer (4xx, 5xx) is an
//!   `application/problem+json` body (RFC 9457, [`Problem`]);
//! - the optional request headers `x-request-id` and `traceparent` (W3C Trace Context), and the
//!   two security schemes: `bearerAuth` (`AUTH_MODE=jwt`, RFC 6750 bearer JWT) and `userIdHeader`
//!   (`AUTH_MODE=off`, the `X-User-Id` header).
//!
//! [`docs_router`] serves the finished document at `GET /openapi.json` and a Swagger UI page at
//! `GET /docs`, whose script and style sheet (npm `swagger-ui-dist`, pinned in
//! `frontend-contract/package.json`, Apache-2.0) are compiled into the binary: no CDN at run time.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http::{HeaderValue, StatusCode, header};
use serde_json::{Map, Value, json};
use utoipa::{PartialSchema, ToSchema};

use crate::problem::{InvalidField, PROBLEM_JSON, Problem};

/// The tag of the probe routes (`/healthz`, `/readyz`, `/version`), which sit outside
/// authentication, rate limits and the API's body limits.
pub const PROBES_TAG: &str = "probes";

/// The tag of the documentation routes (`/openapi.json`, `/docs`).
pub const DOCUMENTATION_TAG: &str = "documentation";

/// A resource id on the wire: 24 lower-case hex digits (the text of a MongoDB ObjectId). Ids of
/// bookings are random, so that one booking's id tells nothing about another's.
#[derive(Debug, Clone, ToSchema)]
#[schema(value_type = String, pattern = "^[0-9a-f]{24}$", example = "6b026ab2686c822a56b0fe36")]
pub struct Id(pub String);

/// The description of the `Idempotency-Key` request header of the `POST` routes.
pub const IDEMPOTENCY_KEY_DOC: &str = "Makes the request safe to retry (IETF draft-ietf-httpapi-idempotency-key-header): 1-255 visible ASCII characters, bare or as a structured-field string (`\"abc\"`). A retry with the same key and the same request gets the first answer again (with `Idempotent-Replayed: true`); with another request 422; while the first is in progress 409. Keys are kept per caller for `IDEMPOTENCY_KEY_TTL` (24 h by default).";

/// The descriptions of the response headers that routes name without one.
const HEADER_DOCS: [(&str, &str); 3] = [
    (
        "Link",
        "`<...?limit=N&after=ID>; rel=\"next\"` (RFC 8288) when the page is full: the next page's URL.",
    ),
    (
        "Idempotent-Replayed",
        "`true` when this is the stored answer of an earlier request with the same `Idempotency-Key`.",
    ),
    (
        "ETag",
        "A strong entity tag of the answer (RFC 9110 section 8.8.3): send it back in `If-None-Match` to get 304 while the answer is the same.",
    ),
];

/// What a service says about itself at the top of its document.
#[derive(Debug, Clone, Copy)]
pub struct About {
    /// The document's title.
    pub title: &'static str,
    /// What the service does (Markdown).
    pub description: &'static str,
    /// The port it listens on by default (8181, 8282): the document's local server URL.
    pub port: u16,
}

/// The status codes the shared middleware may answer on a route of `kind`, with their meaning.
fn common_responses(kind: RouteKind, reads_body: bool) -> Vec<(&'static str, &'static str)> {
    match kind {
        RouteKind::Api => {
            let mut all = vec![
                (
                    "400",
                    "Malformed request: a body that is not JSON, a query, header or token that cannot be read",
                ),
                (
                    "401",
                    "Credentials missing (where the route needs a caller) or not valid: a token that does not verify, has expired, or names another issuer or audience",
                ),
                ("408", "The request body arrived too slowly"),
                ("413", "The request body is larger than the server accepts"),
                (
                    "429",
                    "Too many requests from this caller; retry after `Retry-After` seconds",
                ),
                (
                    "500",
                    "The server failed; the cause is logged with the request id",
                ),
                (
                    "503",
                    "Overloaded, timed out, or a dependency (store, broker) is unavailable; retry after `Retry-After` seconds",
                ),
            ];
            if reads_body {
                all.push(("415", "A body of a media type the API does not read"));
            }
            all
        }
        RouteKind::Probe => vec![("503", "Overloaded or not ready")],
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RouteKind {
    Api,
    Probe,
}

fn header_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/headers/{name}") })
}

/// A real answer of one operation, shown as the example of its JSON body: what the handler
/// serialises for a fixed resource (built with the same conversions the handler uses).
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseExample {
    /// The operation's `operationId` (`getEvent`).
    pub operation_id: &'static str,
    /// The status it answers with (`"200"`).
    pub status: &'static str,
    /// The `application/json` body.
    pub body: Value,
}

impl ResponseExample {
    /// The answer `body` (serialised as the handlers do, `serde_json`) of `operation_id` with
    /// `status`.
    pub fn new<T: serde::Serialize + ?Sized>(
        operation_id: &'static str,
        status: &'static str,
        body: &T,
    ) -> Self {
        Self {
            operation_id,
            status,
            body: serde_json::to_value(body).unwrap_or(Value::Null),
        }
    }
}

/// The finished document of a service: `api` (its routes and the host's probes, as `utoipa` built
/// them) with the info, servers, security schemes, shared headers, problem bodies and the shared
/// middleware's answers (see the module docs), and each of `examples` on the `application/json`
/// body of its operation's answer (an example naming no documented answer is left out; the
/// contract's tests check that none is).
pub fn finish(api: utoipa::openapi::OpenApi, about: &About, examples: &[ResponseExample]) -> Value {
    let mut api = api;
    let components = api.components.get_or_insert_with(Default::default);
    components
        .schemas
        .insert(Problem::name().into_owned(), Problem::schema());
    components
        .schemas
        .insert(InvalidField::name().into_owned(), InvalidField::schema());
    let mut doc = serde_json::to_value(&api).unwrap_or_else(|_| json!({}));
    doc["info"] = json!({
        "title": about.title,
        "version": env!("CARGO_PKG_VERSION"),
        "description": about.description,
        "license": { "name": "MIT OR Apache-2.0", "identifier": "MIT OR Apache-2.0" },
    });
    doc["servers"] = json!([{
        "url": format!("http://localhost:{}", about.port),
        "description": "A local run (`cargo run`, `docker compose up`)",
    }]);
    let components = &mut doc["components"];
    components["securitySchemes"] = json!({
        "bearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": "`AUTH_MODE=jwt` (the default of the service binaries and the Kubernetes manifests): a JWT (RFC 7519) in `Authorization: Bearer` (RFC 6750), signed by the configured key set, issuer and audience; the caller is its `sub`, the roles come from the configured claim (`organiser`, `admin`).",
        },
        "userIdHeader": {
            "type": "apiKey",
            "in": "header",
            "name": "X-User-Id",
            "description": "`AUTH_MODE=off` (the embedded `cargo run` and `docker compose up`): the caller is whoever this header names (1-128 characters, no control characters, no surrounding white space), with the organiser role; without it the caller is `anonymous`. Never use it where others can connect.",
        },
    });
    components["headers"] = json!({
        "XRequestId": {
            "description": "The request id: the client's `x-request-id` when it sent one, else a new UUID; also in the service's log lines.",
            "required": true,
            "schema": { "type": "string" },
        },
        "RetryAfter": {
            "description": "Seconds to wait before retrying (RFC 9110 section 10.2.3).",
            "required": true,
            "schema": { "type": "string", "pattern": "^[0-9]+$" },
        },
        "WwwAuthenticate": {
            "description": "The authentication challenge (RFC 6750 section 3): `Bearer`, with `error` and `error_description` when a token was sent and refused.",
            "required": true,
            "schema": { "type": "string" },
        },
    });
    components["parameters"] = json!({
        "XRequestId": {
            "name": "x-request-id",
            "in": "header",
            "required": false,
            "description": "A request id to keep (echoed back, and in the service's logs); any value.",
            "schema": { "type": "string" },
        },
        "TraceParent": {
            "name": "traceparent",
            "in": "header",
            "required": false,
            "description": "W3C Trace Context (section 3.2), `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`: the caller's trace, which the service's spans and the messages it publishes join. Any other value starts a new trace.",
            "schema": { "type": "string" },
        },
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut() {
                complete_operation(operation);
                let id = operation
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                for example in examples
                    .iter()
                    .filter(|e| id.as_deref() == Some(e.operation_id))
                {
                    let pointer =
                        format!("/responses/{}/content/application~1json", example.status);
                    if let Some(Value::Object(content)) = operation.pointer_mut(&pointer) {
                        content.insert("example".to_owned(), example.body.clone());
                    }
                }
            }
        }
    }
    doc
}

/// The schema of an `X-User-Id` value with authentication off: what `UserId::parse` accepts (1-128
/// characters, no surrounding white space) within what an HTTP header value can carry as text
/// (visible ASCII and spaces, RFC 9110 section 5.5).
const USER_ID_HEADER_PATTERN: &str = "^[!-~]([ -~]{0,126}[!-~])?$";

/// `document` (a [`finish`]ed one) as a service running with authentication `mode` answers:
///
/// - `jwt`: the `bearerAuth` scheme only, and every operation that needs a caller requires it
///   (`X-User-Id` means nothing then);
/// - `off`: no security scheme and no security requirement (nothing is verified; no request is
///   refused for want of credentials), and on every API operation the optional `X-User-Id` header
///   parameter with its constraints, and the 422 a value breaking them gets.
///
/// The committed contract documents both modes at once ([`finish`]); a running service serves
/// this one, so that a client or a fuzzer reading `/openapi.json` meets what it documents.
pub fn for_auth_mode(document: &Value, mode: crate::auth::AuthMode) -> Value {
    use crate::auth::AuthMode;
    let mut doc = document.clone();
    let kept_scheme = match mode {
        AuthMode::Jwt => Some("bearerAuth"),
        AuthMode::Off => None,
    };
    if let Some(Value::Object(schemes)) = doc.pointer_mut("/components/securitySchemes") {
        schemes.retain(|name, _| Some(name.as_str()) == kept_scheme);
    }
    if mode == AuthMode::Off {
        if let Some(Value::Object(schemes)) = doc.pointer("/components/securitySchemes")
            && schemes.is_empty()
            && let Some(Value::Object(components)) = doc.get_mut("components")
        {
            components.remove("securitySchemes");
        }
        doc["components"]["parameters"]["XUserId"] = json!({
            "name": "X-User-Id",
            "in": "header",
            "required": false,
            "description": "`AUTH_MODE=off`: the caller, with the organiser role (`anonymous` without this header). Any value outside the schema is answered 422.",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": 128,
                "pattern": USER_ID_HEADER_PATTERN,
            },
        });
    }
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return doc;
    };
    for operation in paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(Value::as_object_mut)
    {
        match kept_scheme {
            Some(scheme) => {
                if let Some(Value::Array(requirements)) = operation.get_mut("security") {
                    requirements.retain(|requirement| requirement.get(scheme).is_some());
                }
            }
            None => {
                operation.remove("security");
                if operation_kind(operation) == RouteKind::Api {
                    if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
                        parameters.push(json!({ "$ref": "#/components/parameters/XUserId" }));
                    }
                    if let Some(Value::Object(responses)) = operation.get_mut("responses") {
                        let mut invalid = json!({
                            "description": "A request field or header breaks its constraints: a problem body naming each (`errors`)."
                        });
                        complete_response("422", &mut invalid);
                        responses.entry("422").or_insert(invalid);
                    }
                }
            }
        }
    }
    doc
}

/// Whether `operation` is one of the API's or a probe or documentation route, by its tags.
fn operation_kind(operation: &Map<String, Value>) -> RouteKind {
    let tags = operation.get("tags").and_then(Value::as_array);
    if tags.is_some_and(|tags| {
        tags.iter()
            .any(|t| t == PROBES_TAG || t == DOCUMENTATION_TAG)
    }) {
        RouteKind::Probe
    } else {
        RouteKind::Api
    }
}

/// Adds the shared middleware's answers, headers and parameters to one operation.
fn complete_operation(operation: &mut Value) {
    let Some(operation) = operation.as_object_mut() else {
        return;
    };
    let kind = operation_kind(operation);
    let reads_body = operation.contains_key("requestBody");
    // A parameter is absent or a value, never JSON null: `Option<T>` documents it as optional.
    if let Some(Value::Array(parameters)) = operation.get_mut("parameters") {
        for parameter in parameters {
            if let Some(Value::Array(types)) = parameter.pointer_mut("/schema/type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    if let Some(schema) = parameter.get_mut("schema") {
                        schema["type"] = only;
                    }
                }
            }
        }
    }
    if kind == RouteKind::Api {
        let parameters = operation
            .entry("parameters")
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Some(parameters) = parameters.as_array_mut() {
            parameters.push(json!({ "$ref": "#/components/parameters/XRequestId" }));
            parameters.push(json!({ "$ref": "#/components/parameters/TraceParent" }));
        }
    }
    let responses = operation
        .entry("responses")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(responses) = responses.as_object_mut() else {
        return;
    };
    for (status, description) in common_responses(kind, reads_body) {
        responses
            .entry(status)
            .or_insert_with(|| json!({ "description": description }));
    }
    for (status, response) in responses.iter_mut() {
        complete_response(status, response);
    }
}

/// Adds `x-request-id` to one response, the problem body to an error without a body, and the
/// headers a status promises (`WWW-Authenticate` on 401, `Retry-After` on 429 and 503).
fn complete_response(status: &str, response: &mut Value) {
    let Some(response) = response.as_object_mut() else {
        return;
    };
    let headers = response
        .entry("headers")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(headers) = headers.as_object_mut() {
        for (name, description) in HEADER_DOCS {
            if let Some(Value::Object(header)) = headers.get_mut(name) {
                header
                    .entry("description")
                    .or_insert_with(|| json!(description));
            }
        }
        if let Some(Value::Object(location)) = headers.get_mut("Location") {
            location.insert("required".to_owned(), Value::Bool(true));
        }
        headers.insert("x-request-id".to_owned(), header_ref("XRequestId"));
        match status {
            "401" => {
                headers.insert("WWW-Authenticate".to_owned(), header_ref("WwwAuthenticate"));
            }
            "429" | "503" => {
                headers.insert("Retry-After".to_owned(), header_ref("RetryAfter"));
            }
            _ => {}
        }
    }
    let is_error = status.starts_with('4') || status.starts_with('5');
    if is_error && !response.contains_key("content") {
        response.insert(
            "content".to_owned(),
            json!({ PROBLEM_JSON: { "schema": { "$ref": "#/components/schemas/Problem" } } }),
        );
    }
}

/// The documentation routes of a service: `GET /openapi.json` (the finished `document`,
/// `application/json`) and `GET /docs` (Swagger UI, with its assets under `/docs/`).
pub fn docs_router(document: &Value) -> Router {
    let text: Arc<str> = serde_json::to_string(document)
        .unwrap_or_else(|_| "{}".to_owned())
        .into();
    Router::new()
        .route("/openapi.json", get(openapi_json))
        .with_state(text)
        .route("/docs", get(docs_page))
        .route(
            "/docs/index.js",
            get(|| async { asset(INDEX_JS, "text/javascript") }),
        )
        .route(
            "/docs/swagger-ui-bundle.js",
            get(|| async { asset(SWAGGER_UI_BUNDLE, "text/javascript") }),
        )
        .route(
            "/docs/swagger-ui.css",
            get(|| async { asset(SWAGGER_UI_CSS, "text/css") }),
        )
}

/// Swagger UI's script (npm `swagger-ui-dist`, the version `frontend-contract/package.json` pins;
/// the test command checks that the two copies are the same).
const SWAGGER_UI_BUNDLE: &str = include_str!("../assets/swagger-ui/swagger-ui-bundle.js");
/// Swagger UI's style sheet (same package).
const SWAGGER_UI_CSS: &str = include_str!("../assets/swagger-ui/swagger-ui.css");
/// Starts Swagger UI on `/openapi.json` (a script of its own, so that the page needs no inline
/// script).
const INDEX_JS: &str = r##"window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    // No call to the online validator (swagger.io): the page reaches nothing but this service.
    validatorUrl: null,
  });
};
"##;
const DOCS_PAGE: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>MyEvents API</title>
    <link rel="stylesheet" href="/docs/swagger-ui.css">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="/docs/swagger-ui-bundle.js"></script>
    <script src="/docs/index.js"></script>
  </body>
</html>
"#;

#[utoipa::path(get, path = "/openapi.json", operation_id = "getOpenApiDocument", tag = DOCUMENTATION_TAG,
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json", body = Object)))]
async fn openapi_json(State(text): State<Arc<str>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        text.to_string(),
    )
        .into_response()
}

#[utoipa::path(get, path = "/docs", operation_id = "getDocumentationPage", tag = DOCUMENTATION_TAG,
    responses((status = 200, description = "The API's documentation page (Swagger UI)", content_type = "text/html", body = String)))]
async fn docs_page() -> Response {
    asset(DOCS_PAGE, "text/html; charset=utf-8")
}

fn asset(body: &'static str, media_type: &'static str) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(media_type)),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The documentation routes' own entries, for the document: `/openapi.json` and `/docs`.
pub fn docs_paths() -> utoipa::openapi::OpenApi {
    use utoipa::OpenApi as _;
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(openapi_json, docs_page))]
    struct Docs;
    Docs::openapi()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    #[utoipa::path(post, path = "/things", request_body = String,
        responses((status = 201, description = "Made", body = Object), (status = 404, description = "Missing")))]
    #[allow(dead_code)]
    async fn make() {}

    fn document() -> Value {
        #[derive(utoipa::OpenApi)]
        #[openapi(paths(make))]
        struct Api;
        let mut api = <Api as utoipa::OpenApi>::openapi();
        api.merge(docs_paths());
        finish(
            api,
            &About {
                title: "Things",
                description: "Makes things.",
                port: 8080,
            },
            &[ResponseExample::new("make", "201", &json!({"id": 1}))],
        )
    }

    #[test]
    fn every_route_gets_the_shared_answers_and_every_error_a_problem_body() {
        let doc = document();
        let make = &doc["paths"]["/things"]["post"]["responses"];
        for status in [
            "201", "400", "401", "404", "408", "413", "415", "429", "500", "503",
        ] {
            assert!(make[status].is_object(), "{status} missing: {make}");
            assert_eq!(
                make[status]["headers"]["x-request-id"]["$ref"],
                "#/components/headers/XRequestId"
            );
        }
        assert_eq!(
            make["404"]["content"][PROBLEM_JSON]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        assert_eq!(
            make["201"]["content"]["application/json"]["example"],
            json!({"id": 1})
        );
        assert!(make["401"]["headers"]["WWW-Authenticate"].is_object());
        assert!(make["429"]["headers"]["Retry-After"].is_object());
        // The documentation routes sit outside the API's middleware.
        let docs = &doc["paths"]["/docs"]["get"]["responses"];
        assert!(docs["503"].is_object());
        assert!(docs.get("401").is_none());
        assert!(doc["components"]["schemas"]["Problem"].is_object());
        assert_eq!(doc["openapi"], "3.1.0");
    }

    #[test]
    fn a_served_document_states_the_running_authentication_only() {
        use crate::auth::AuthMode;
        let mut both = document();
        both["paths"]["/things"]["post"]["security"] =
            json!([{ "bearerAuth": [] }, { "userIdHeader": [] }]);

        let jwt = for_auth_mode(&both, AuthMode::Jwt);
        let make = &jwt["paths"]["/things"]["post"];
        assert_eq!(make["security"], json!([{ "bearerAuth": [] }]));
        let schemes = jwt["components"]["securitySchemes"]
            .as_object()
            .expect("schemes");
        assert_eq!(schemes.keys().collect::<Vec<_>>(), ["bearerAuth"]);
        assert!(jwt["components"]["parameters"].get("XUserId").is_none());

        let off = for_auth_mode(&both, AuthMode::Off);
        let make = &off["paths"]["/things"]["post"];
        assert!(make.get("security").is_none(), "{make}");
        assert!(off["components"].get("securitySchemes").is_none());
        assert!(
            make["parameters"]
                .as_array()
                .expect("parameters")
                .contains(&json!({ "$ref": "#/components/parameters/XUserId" }))
        );
        assert_eq!(
            make["responses"]["422"]["content"][PROBLEM_JSON]["schema"]["$ref"],
            "#/components/schemas/Problem"
        );
        let header = &off["components"]["parameters"]["XUserId"];
        assert_eq!(header["name"], "X-User-Id");
        assert_eq!(header["required"], false);
        // The documentation routes take no X-User-Id and answer no 422.
        let docs = &off["paths"]["/docs"]["get"];
        assert!(docs["responses"].get("422").is_none());
    }

    #[tokio::test]
    async fn the_document_and_the_page_with_its_assets_are_served() {
        let doc = document();
        let router = docs_router(&doc);
        for (path, media_type) in [
            ("/openapi.json", "application/json"),
            ("/docs", "text/html; charset=utf-8"),
            ("/docs/index.js", "text/javascript"),
            ("/docs/swagger-ui-bundle.js", "text/javascript"),
            ("/docs/swagger-ui.css", "text/css"),
        ] {
            let response = router
                .clone()
                .oneshot(
                    http::Request::get(path)
                        .body(axum::body::Body::empty())
                        .expect("request"),
                )
                .await
                .expect("response");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(response.headers()[header::CONTENT_TYPE], media_type);
            let body = axum::body::to_bytes(response.into_body(), 1 << 23)
                .await
                .expect("body");
            if path == "/openapi.json" {
                let served: Value = serde_json::from_slice(&body).expect("json");
                assert_eq!(served, doc);
            } else {
                assert!(body.len() > 100, "{path}");
            }
        }
    }
}
