//! The request's W3C trace context (`traceparent`): continued from the client's or started here,
//! and handed to handlers for the messages a request causes.

use axum::extract::Request;
use http::{HeaderName, HeaderValue};
use myevents_platform::trace::{TRACEPARENT_HEADER, TraceContext};

/// The `traceparent` header's name, parsed once (a `&str` name is parsed at every use).
const TRACEPARENT: HeaderName = HeaderName::from_static(TRACEPARENT_HEADER);

/// The request's W3C `traceparent` (set by [`crate::layers::with_common_layers`]: the client's trace continued with a
/// span of ours, or a new trace), to store with the messages the request causes.
pub fn trace_parent(headers: &http::HeaderMap) -> Option<String> {
    headers
        .get(TRACEPARENT)
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
/// extensions (for the request span). A `map_request` step: it neither waits nor sees the answer.
pub(crate) fn continue_trace(mut request: Request) -> Request {
    let ours = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(TraceContext::parse)
        .map_or_else(TraceContext::new_root, |incoming| incoming.child());
    if let Ok(value) = HeaderValue::from_bytes(&ours.encoded()) {
        request.headers_mut().insert(TRACEPARENT, value);
    }
    request.extensions_mut().insert(ours);
    request
}
