//! HTTP helpers: JSON requests, answers read whole ([`Answer`]), waiting for a status.

use std::time::Duration;

use crate::eventually;

/// `GET url`, its body as JSON (whatever the status).
///
/// # Panics
/// When there is no answer or its body is not JSON.
pub async fn get_json(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> serde_json::Value {
    let response = client.get(url).send().await.expect("request");
    response.json().await.expect("json")
}

/// `POST url` with the JSON `body`, the answer's body as JSON (whatever the status).
///
/// # Panics
/// When there is no answer or its body is not JSON.
pub async fn post_json(
    client: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    body: &serde_json::Value,
) -> serde_json::Value {
    let response = client.post(url).json(body).send().await.expect("request");
    response.json().await.expect("json")
}

/// The seats of the bookings a listing (`GET url`, a JSON array of bookings) shows, summed.
///
/// # Panics
/// When the listing cannot be read or is not an array of bookings with `Seats`.
pub async fn listed_seats(client: &reqwest::Client, url: &str) -> i64 {
    get_json(client, url)
        .await
        .as_array()
        .expect("array")
        .iter()
        .map(|b| b["Seats"].as_i64().expect("Seats"))
        .sum()
}

/// Polls `GET url` every 25 ms until it answers `status` (then `true`) or `deadline` passes (then
/// `false`); a connection refused counts as not yet.
pub async fn eventually_answers(
    url: &str,
    status: reqwest::StatusCode,
    deadline: Duration,
) -> bool {
    let client = reqwest::Client::new();
    eventually(deadline, || async {
        client
            .get(url)
            .send()
            .await
            .is_ok_and(|r| r.status() == status)
    })
    .await
}

#[derive(Debug)]
/// An HTTP answer, read whole: status, headers, and the body as JSON (or as a JSON string when it
/// is not JSON).
pub struct Answer {
    /// The status.
    pub status: reqwest::StatusCode,
    /// The headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body.
    pub body: serde_json::Value,
}

impl Answer {
    /// `method path` with `headers` and `body`, sent to `router` in process (see
    /// [`Answer::from_router`]).
    ///
    /// # Panics
    /// When the method, path or a header is malformed, or as [`Answer::from_router`].
    pub async fn call(
        router: &App,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<axum::body::Body>,
    ) -> Self {
        let mut request = http::Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Self::from_router(router, request.body(body.into()).expect("request")).await
    }

    /// Sends `request` to `router` in process (`tower::ServiceExt::oneshot`: the whole middleware
    /// stack, no socket), as from the client address 127.0.0.1:40000 with `Host: localhost` when
    /// it names none (as an HTTP/1.1 client does), and reads the answer whole.
    ///
    /// # Panics
    /// When the router fails (it never does: axum routers are infallible) or the body cannot be
    /// read.
    pub async fn from_router(router: &App, mut request: http::Request<axum::body::Body>) -> Self {
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        if !request.headers().contains_key(http::header::HOST) {
            request.headers_mut().insert(
                http::header::HOST,
                http::HeaderValue::from_static("localhost"),
            );
        }
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(std::net::SocketAddr::from((
                [127, 0, 0, 1],
                40000,
            ))));
        let response = router.clone().oneshot(request).await.expect("infallible");
        let (parts, body) = response.into_parts();
        let bytes = body.collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned())
        });
        Self {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// Reads a response whole.
    ///
    /// # Panics
    /// When the body cannot be read.
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Self {
            status,
            headers,
            body,
        }
    }

    /// Asserts an RFC 9457 problem answer with `status`.
    ///
    /// # Panics
    /// When the answer is anything else.
    pub fn assert_problem(&self, status: reqwest::StatusCode) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_eq!(
            self.headers["content-type"], "application/problem+json",
            "problem body expected"
        );
        assert_eq!(self.body["status"], status.as_u16());
        assert!(self.body["title"].is_string() && self.body["type"].is_string());
    }
}

/// The Prometheus text a service serves at `url` (its metrics port's `/metrics`).
///
/// # Panics
/// When nothing answers.
pub async fn scrape(url: &str) -> String {
    reqwest::get(url)
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text")
}

/// The value of `series` in the Prometheus text `metrics` (the text format, version 0.0.4), if
/// listed: `series` is its name and labels as the format writes them, e.g.
/// `myevents_outbox_pending{service="booking-service"}`.
pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// A service's HTTP application, middleware included: the type `myevents_http::layers::App` names
/// (the services' `Application::router`), or any router boxed as one (`App::new(router)`).
pub type App = tower::util::BoxCloneSyncService<
    http::Request<axum::body::Body>,
    axum::response::Response,
    std::convert::Infallible,
>;

/// A service's router called in process, as a client would call the service (see
/// [`Answer::call`]). Cheap to clone.
#[derive(Clone)]
pub struct InProcess(pub App);

impl InProcess {
    /// `method path` with `headers` and `body`, through the whole router.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<axum::body::Body>,
    ) -> Answer {
        Answer::call(&self.0, method, path, headers, body).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.get_with(path, &[]).await
    }

    /// `GET path` with `headers`.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.request("GET", path, headers, axum::body::Body::empty())
            .await
    }
}
