//! W3C Trace Context (<https://www.w3.org/TR/trace-context/>, section 3.2): the `traceparent` value
//! `00-<trace id: 32 hex>-<parent id: 16 hex>-<flags: 2 hex>` that carries one trace from an HTTP
//! request through the broker (message header [`TRACEPARENT_HEADER`]) into the consumer's span.

use std::fmt;

/// The header (HTTP and message) that carries the trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// Length of a `traceparent` value of version `00`, in bytes (55).
pub const TRACEPARENT_LEN: usize = 55;

/// One position in a trace: the trace and the span that is the parent of the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id (16 bytes, not all zero).
    pub trace_id: [u8; 16],
    /// The parent span id (8 bytes, not all zero).
    pub span_id: [u8; 8],
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    while bytes.iter().all(|b| *b == 0) {
        rand::fill(&mut bytes);
    }
    bytes
}

/// Writes the lower-case hex of `bytes` into `out` (twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (byte, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != N * 2 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    let mut bytes = [0u8; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(bytes)
}

impl TraceContext {
    /// A new trace (sampled) with a new span.
    pub fn new_root() -> Self {
        Self {
            trace_id: random(),
            span_id: random(),
            flags: 1,
        }
    }

    /// Parses a `traceparent` value; `None` when it is malformed (then a new trace starts, as the
    /// specification asks). Versions other than `00` are read by their first four fields.
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let version = parts.next()?;
        let trace_id = unhex::<16>(parts.next()?)?;
        let span_id = unhex::<8>(parts.next()?)?;
        let flags = unhex::<1>(parts.next()?)?[0];
        let valid_version = version.len() == 2 && version != "ff" && unhex::<1>(version).is_some();
        if !valid_version
            || (version == "00" && parts.next().is_some())
            || trace_id.iter().all(|b| *b == 0)
            || span_id.iter().all(|b| *b == 0)
        {
            return None;
        }
        Some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    /// The same trace with a new span of ours as the parent of what follows.
    #[must_use]
    pub fn child(&self) -> Self {
        Self {
            span_id: random(),
            ..*self
        }
    }

    /// The trace id as 32 lower-case hex digits (what logs show as `trace_id`).
    pub fn trace_id_hex(&self) -> String {
        String::from_utf8_lossy(&self.trace_id_ascii()).into_owned()
    }

    /// [`TraceContext::trace_id_hex`] as its 32 ASCII bytes, written without allocating (for the
    /// span of every request).
    pub fn trace_id_ascii(&self) -> [u8; 32] {
        let mut text = [0u8; 32];
        hex_into(&self.trace_id, &mut text);
        text
    }

    /// The `traceparent` value (`00-<trace id>-<parent id>-<flags>`, [`TRACEPARENT_LEN`] ASCII
    /// bytes), written without allocating: this runs for every request and message.
    pub fn encoded(&self) -> [u8; TRACEPARENT_LEN] {
        let mut text = [b'-'; TRACEPARENT_LEN];
        text[..2].copy_from_slice(b"00");
        hex_into(&self.trace_id, &mut text[3..35]);
        hex_into(&self.span_id, &mut text[36..52]);
        hex_into(&[self.flags], &mut text[53..]);
        text
    }
}

impl TraceContext {
    /// Makes `span` a child of this position in the trace in the OpenTelemetry export (feature
    /// `otlp`; without it, the trace id is only a log field).
    #[cfg(feature = "otlp")]
    pub fn parent(&self, span: &tracing::Span) {
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
        };
        use tracing_opentelemetry::OpenTelemetrySpanExt;
        let remote = SpanContext::new(
            TraceId::from_bytes(self.trace_id),
            SpanId::from_bytes(self.span_id),
            TraceFlags::new(self.flags),
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }

    /// Makes `span` a child of this position in the trace in the OpenTelemetry export (feature
    /// `otlp`; without it, the trace id is only a log field).
    #[cfg(not(feature = "otlp"))]
    pub fn parent(&self, _span: &tracing::Span) {}
}

impl fmt::Display for TraceContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.encoded();
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_round_trips_and_malformed_ones_are_refused() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let context = TraceContext::parse(text).expect("valid");
        assert_eq!(context.to_string(), text);
        assert_eq!(context.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            &context.trace_id_ascii(),
            b"4bf92f3577b34da6a3ce929d0e0e4736"
        );
        let child = context.child();
        assert_eq!(child.trace_id, context.trace_id);
        assert_ne!(child.span_id, context.span_id);
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad}");
        }
        let root = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&root.to_string()), Some(root));
    }
}
