//! The JSON log line, as `tracing-subscriber`'s JSON format writes it with `flatten_event(true)`,
//! `with_current_span(true)` and `with_span_list(false)` — one object per line:
//! `{"timestamp":…,"level":…,<the event's fields>,"target":…,"span":{<the current span's fields>,"name":…}}`
//! — in fewer instructions: the library's format keeps a span's fields as the JSON text of an object
//! and, for every line logged in the span, parses that text back into a map to write it again, and
//! hands the line over in many small UTF-8-checked pieces. [`JsonLines`] copies the span's text as
//! it is and serialises each line into one buffer; [`SpanFields`] writes a span's fields straight
//! into their JSON text. Both write fields through [`Members`], which copies the strings that need
//! no escaping as they are, and the timestamp's date and time of day are formatted once a second.

use std::cell::RefCell;
use std::fmt::{self, Write as _};

use tracing::span::Record;
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// Bytes a line's buffer starts with; the access log's lines take about 300.
const LINE_CAPACITY: usize = 384;

/// Formats a span's fields as the JSON text of one object (`{"method":"GET","request_id":"…"}`;
/// `{}` without fields), the way [`JsonFields`] does, without building a map first.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SpanFields;

impl<'writer> FormatFields<'writer> for SpanFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut text = Vec::with_capacity(128);
        text.push(b'{');
        fields.record(&mut Members::new(&mut text));
        text.push(b'}');
        writer.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }

    /// Fields recorded after the span was created (`Span::record`) are merged into its object as
    /// [`JsonFields`] merges them (a later value replaces an earlier one).
    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &Record<'_>,
    ) -> fmt::Result {
        let mut merged = FormattedFields::<JsonFields>::new(std::mem::take(&mut current.fields));
        let result = JsonFields::new().add_fields(&mut merged, fields);
        current.fields = merged.fields;
        result
    }
}

/// Writes the fields it is shown as the members of a JSON object (`"name":value`, separated by
/// commas) into a buffer, as `tracing-serde`'s map visitor serialises them: strings as JSON strings,
/// numbers and booleans as JSON numbers and booleans (a float that is not finite as `null`), and
/// any other value as the JSON string of its `Debug` text. Strings that need no escaping (the
/// usual ones: ids, routes, messages) are copied at once.
struct Members<'b> {
    out: &'b mut Vec<u8>,
    first: bool,
}

impl<'b> Members<'b> {
    /// Members appended to `out`, which holds an object's opening brace.
    fn new(out: &'b mut Vec<u8>) -> Self {
        Self { out, first: true }
    }

    /// Members appended to `out`, which holds an object's opening brace and a member already.
    fn following(out: &'b mut Vec<u8>) -> Self {
        Self { out, first: false }
    }

    /// `"name":` (after a comma unless it is the first member).
    fn name(&mut self, name: &str) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        json_string(self.out, name);
        self.out.push(b':');
    }

    /// `"name":"value"`.
    fn str(&mut self, name: &str, value: &str) {
        self.name(name);
        json_string(self.out, value);
    }

    /// `"name":value`, with `value` as `serde_json` writes it.
    fn value(&mut self, name: &str, value: impl serde::Serialize) {
        self.name(name);
        if serde_json::to_writer(&mut *self.out, &value).is_err() {
            self.out.extend_from_slice(b"null");
        }
    }
}

impl tracing::field::Visit for Members<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.str(field.name(), value);
    }

    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        self.value(field.name(), value);
    }

    fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
        self.value(field.name(), value);
    }

    fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
        self.value(field.name(), value);
    }

    fn record_f64(&mut self, field: &tracing::field::Field, value: f64) {
        self.value(field.name(), value);
    }

    /// The `Debug` text is written where it goes, and escaped afterwards in the rare case it needs
    /// it (a message is `format_args!`, whose text rarely has a quote or a control character).
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        self.name(field.name());
        let start = self.out.len();
        self.out.push(b'"');
        let _ = std::io::Write::write_fmt(self.out, format_args!("{value:?}"));
        if needs_escaping(&self.out[start + 1..]) {
            let text = String::from_utf8_lossy(&self.out[start + 1..]).into_owned();
            self.out.truncate(start);
            json_string(self.out, &text);
        } else {
            self.out.push(b'"');
        }
    }
}

/// `text` as a JSON string (RFC 8259 section 7): copied between quotes when nothing in it needs
/// escaping, else escaped by `serde_json`.
fn json_string(out: &mut Vec<u8>, text: &str) {
    if !needs_escaping(text.as_bytes()) {
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    } else if serde_json::to_writer(&mut *out, text).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Whether `bytes` hold a byte JSON escapes in a string (RFC 8259 section 7): a control character
/// (below 0x20), `"` or `\`. Eight bytes at a time, as one `u64` (the strings of a line are mostly
/// 5 to 40 bytes, too short for the compiler's vector loop to pay): a byte below `n` leaves its
/// high bit set in `(word - n·0x01…01) & !word & 0x80…80`, a byte equal to `c` is a zero byte of
/// `word ^ c·0x01…01` (the usual "has a zero byte" test), and neither test misses one.
fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGH != 0;
    let has = |word: u64, c: u8| below(word ^ (ONES * u64::from(c)), 1);
    let mut chunks = bytes.chunks_exact(8);
    let mut found = false;
    for chunk in &mut chunks {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let word = u64::from_ne_bytes(word);
        found |= below(word, 0x20) | has(word, b'"') | has(word, b'\\');
    }
    found
        || chunks
            .remainder()
            .iter()
            .any(|&b| b < 0x20 || b == b'"' || b == b'\\')
}

thread_local! {
    /// The second (since the Unix epoch) this thread formatted last, and its text up to the seconds
    /// (`2026-12-06T21:33:00`).
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Writes `now` as the line's `timestamp` into `out`: UTC, RFC 3339 with microseconds
/// (`2026-12-06T21:33:00.123456Z`), as `tracing-subscriber`'s [`SystemTime`] writes it, with the
/// date and time of day formatted once per second and thread (formatting them for every line cost a
/// twentieth of a read). `None`, writing nothing, for a time before 1970 or beyond what `chrono`
/// represents.
fn write_timestamp(now: std::time::SystemTime, out: &mut Vec<u8>) -> Option<()> {
    let since = now.duration_since(std::time::UNIX_EPOCH).ok()?;
    let (seconds, micros) = (since.as_secs(), since.subsec_micros());
    SECOND.with_borrow_mut(|(second, text)| {
        if *second != seconds {
            let at = chrono::DateTime::from_timestamp(i64::try_from(seconds).ok()?, 0)?;
            text.clear();
            write!(text, "{}", at.format("%Y-%m-%dT%H:%M:%S")).ok()?;
            *second = seconds;
        }
        let mut digits = [b'0'; 6];
        let mut rest = micros;
        for digit in digits.iter_mut().rev() {
            *digit += u8::try_from(rest % 10).ok()?;
            rest /= 10;
        }
        out.extend_from_slice(text.as_bytes());
        out.push(b'.');
        out.extend_from_slice(&digits);
        out.push(b'Z');
        Some(())
    })
}

/// The JSON event format of the services' logs (see the module's documentation); spans' fields
/// come from [`SpanFields`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonLines;

impl<S> FormatEvent<S, SpanFields> for JsonLines
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, SpanFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Vec::with_capacity(LINE_CAPACITY);
        line.extend_from_slice(br#"{"timestamp":""#);
        if write_timestamp(std::time::SystemTime::now(), &mut line).is_none() {
            let mut timestamp = String::with_capacity(32);
            SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
            line.extend_from_slice(timestamp.as_bytes());
        }
        line.push(b'"');
        {
            let mut members = Members::following(&mut line);
            members.str("level", meta.level().as_str());
            event.record(&mut members);
            members.str("target", meta.target());
            // Not ended: the span goes in before the closing brace.
        }
        let span = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(span) = span {
            line.extend_from_slice(br#","span":{"#);
            if let Some(stored) = span.extensions().get::<FormattedFields<SpanFields>>() {
                // `{"a":1,"b":2}`, or `{}`: copied without its braces.
                let inner = stored
                    .fields
                    .strip_prefix('{')
                    .and_then(|f| f.strip_suffix('}'))
                    .unwrap_or_default();
                if !inner.is_empty() {
                    line.extend_from_slice(inner.as_bytes());
                    line.push(b',');
                }
            }
            line.extend_from_slice(br#""name":"#);
            json_string(&mut line, span.metadata().name());
            line.push(b'}');
        }
        line.extend_from_slice(b"}\n");
        writer.write_str(std::str::from_utf8(&line).map_err(|_| fmt::Error)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_byte_json_escapes_is_found_wherever_it_is() {
        let naive = |bytes: &[u8]| bytes.iter().any(|&b| b < 0x20 || b == b'"' || b == b'\\');
        // Every byte value at every position of strings of 0 to 24 bytes, among bytes that need
        // no escaping, the highest (0xff, 0x80) and the closest to the ones that do included.
        for len in 0..=24 {
            for at in 0..len {
                for byte in 0..=u8::MAX {
                    for filler in [b'a', b'!', b'#', b' ', b'[', b']', 0x7f, 0x80, 0xff] {
                        let mut bytes = vec![filler; len];
                        bytes[at] = byte;
                        assert_eq!(
                            needs_escaping(&bytes),
                            naive(&bytes),
                            "{byte:#04x} at {at} of {len} among {filler:#04x}"
                        );
                    }
                }
            }
            assert!(!needs_escaping(&vec![b'a'; len]));
        }
    }

    /// [`write_timestamp`] into a string of its own.
    fn timestamp(now: std::time::SystemTime) -> Option<String> {
        let mut out = Vec::new();
        write_timestamp(now, &mut out)?;
        String::from_utf8(out).ok()
    }

    #[test]
    fn timestamps_are_rfc_3339_with_microseconds_in_utc() {
        use chrono::{SecondsFormat, TimeZone};
        let expected = |t: std::time::SystemTime| {
            chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(SecondsFormat::Micros, true)
        };
        let second = chrono::Utc
            .with_ymd_and_hms(2026, 12, 6, 21, 33, 59)
            .single()
            .expect("a time");
        let at = |micros: u64| {
            std::time::SystemTime::from(second) + std::time::Duration::from_micros(micros)
        };
        // The same second twice (its text kept), the next one, a leap day, the epoch.
        let leap_day = chrono::Utc
            .with_ymd_and_hms(2028, 2, 29, 0, 0, 0)
            .single()
            .expect("a time");
        for t in [
            at(0),
            at(123_456),
            at(999_999),
            at(1_000_007),
            std::time::SystemTime::from(leap_day) + std::time::Duration::from_nanos(5_999),
            std::time::UNIX_EPOCH,
        ] {
            assert_eq!(timestamp(t).as_deref(), Some(expected(t).as_str()));
        }
        assert_eq!(
            timestamp(at(7)).as_deref(),
            Some("2026-12-06T21:33:59.000007Z")
        );
        assert_eq!(
            timestamp(std::time::UNIX_EPOCH - std::time::Duration::from_secs(1)),
            None
        );
    }
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    /// What a writer was given, shared with the test.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// The lines `log` writes through `layer`, each parsed.
    fn lines<L>(layer: impl FnOnce(Captured) -> L, log: impl FnOnce()) -> Vec<serde_json::Value>
    where
        L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
    {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::registry().with(layer(captured.clone()));
        tracing::subscriber::with_default(subscriber, log);
        let bytes = captured.0.lock().expect("lock").clone();
        String::from_utf8(bytes)
            .expect("UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
            .collect()
    }

    fn log_in_spans() {
        tracing::info!(answer = 42, "outside any span");
        let span = tracing::info_span!(
            "http",
            method = "GET",
            request_id = "a\"b\\c\n\u{1}",
            empty = ""
        );
        let _entered = span.enter();
        tracing::warn!(
            status = 200_u64,
            route = "/events",
            latency_us = 7_u64,
            ok = true,
            "finished"
        );
        span.record("request_id", "recorded later");
        tracing::error!(error = %"broken \u{1F4A5}", "failed");
        let bare = tracing::info_span!("bare");
        let _bare = bare.enter();
        tracing::debug!(ratio = 0.5, "in a span without fields");
    }

    #[test]
    fn a_line_is_what_the_librarys_json_format_writes() {
        let ours = lines(
            |w| {
                tracing_subscriber::fmt::layer()
                    .fmt_fields(SpanFields)
                    .event_format(JsonLines)
                    .with_writer(move || w.clone())
            },
            log_in_spans,
        );
        let library = lines(
            |w| {
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(move || w.clone())
            },
            log_in_spans,
        );
        assert_eq!(ours.len(), 4, "{ours:?}");
        let without_time = |lines: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
            lines
                .into_iter()
                .map(|mut line| {
                    let time = line["timestamp"].take();
                    assert!(time.as_str().is_some_and(|t| t.ends_with('Z')), "{time}");
                    line
                })
                .collect()
        };
        assert_eq!(without_time(ours.clone()), without_time(library));
        assert_eq!(ours[1]["span"]["request_id"], "a\"b\\c\n\u{1}");
        assert_eq!(ours[2]["span"]["request_id"], "recorded later");
        assert_eq!(ours[3]["span"], serde_json::json!({ "name": "bare" }));
        assert!(ours[0].get("span").is_none());
    }
}
