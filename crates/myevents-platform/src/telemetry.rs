//! Logging and trace export set-up with `tracing`.

use std::cell::RefCell;
use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tracing_appender::non_blocking::NonBlocking;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::Registry;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

mod json_lines;

/// Log lines waiting for the writer thread at most; a burst beyond it makes the logging threads wait
/// (nothing is dropped).
const BUFFERED_LINES: usize = 16_384;

/// Shortest time between two writes of the log writer thread to standard output (1 ms): a log
/// line waits at most about this long, and a busy service makes at most about a thousand `write`
/// calls a second for its logs instead of one every line or two.
const FLUSH_PACE: Duration = Duration::from_millis(1);

/// The log writer thread's output: `inner`, flushed at most once per `pace`. The writer thread
/// (`tracing-appender`'s) flushes each time it has taken every queued line, which under load is
/// after nearly every line: a `write` call, and a wake-up of the thread, per line or two (measured
/// at 0.57 `write`, 0.25 `sched_yield` and 0.1 `futex` calls per request, about 2 µs of kernel time
/// per request, as much as the line's formatting). A flush less than `pace` after the previous one
/// first waits out the rest of `pace`, while the lines logged meanwhile queue up for the next
/// write: flushes are at least `pace` apart. A flush after a quiet `pace` waits for nothing.
#[derive(Debug)]
struct PacedFlush<W> {
    inner: W,
    pace: Duration,
    flushed: Option<Instant>,
}

impl<W: Write> PacedFlush<W> {
    fn new(inner: W, pace: Duration) -> Self {
        Self {
            inner,
            pace,
            flushed: None,
        }
    }
}

impl<W: Write> Write for PacedFlush<W> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.inner.write(bytes)
    }

    fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.inner.write_all(bytes)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if let Some(previous) = self.flushed {
            let since = previous.elapsed();
            if since < self.pace {
                std::thread::sleep(self.pace - since);
            }
        }
        let result = self.inner.flush();
        self.flushed = Some(Instant::now());
        result
    }
}

/// Hands log lines to `tracing-appender`'s writer thread through a clone of its [`NonBlocking`]
/// handle kept per thread. [`NonBlocking`] itself, as a `MakeWriter`, clones the handle for every
/// line and drops it after: four atomic read-modify-writes on counters every logging thread shares,
/// per line. The lines and what becomes of them are the same.
#[derive(Debug)]
struct PerThread {
    writer: NonBlocking,
    /// Tells this writer's clones from another's (a process may build more than one).
    id: usize,
}

impl PerThread {
    fn new(writer: NonBlocking) -> Self {
        static IDS: AtomicUsize = AtomicUsize::new(0);
        Self {
            writer,
            id: IDS.fetch_add(1, Ordering::Relaxed),
        }
    }
}

thread_local! {
    /// This thread's clone of a [`PerThread`]'s handle, with that writer's id.
    static HANDLE: RefCell<Option<(usize, NonBlocking)>> = const { RefCell::new(None) };
}

impl<'a> MakeWriter<'a> for PerThread {
    type Writer = PerThreadLine<'a>;

    fn make_writer(&'a self) -> PerThreadLine<'a> {
        PerThreadLine(self)
    }
}

/// A line's writer of [`PerThread`].
#[derive(Debug)]
struct PerThreadLine<'a>(&'a PerThread);

impl Write for PerThreadLine<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let PerThread { writer, id } = self.0;
        HANDLE.with_borrow_mut(|handle| match handle {
            Some((kept, clone)) if kept == id => clone.write(bytes),
            _ => handle.insert((*id, writer.clone())).1.write(bytes),
        })
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The level filter when `RUST_LOG` is unset, blank or refused.
const DEFAULT_FILTER: &str = "info";

/// The level filter `RUST_LOG` asks for (see [`level_filter`]).
#[derive(Debug)]
enum LogFilter {
    /// Targets and levels alone (`info,myevents_http::layers=warn`): decided once per call site.
    Targets(Box<Targets>),
    /// Directives that name spans or field values (`[http{method=POST}]=debug`).
    Spans(Box<EnvFilter>),
}

impl LogFilter {
    fn layer(self) -> Box<dyn Layer<Registry> + Send + Sync> {
        match self {
            Self::Targets(filter) => (*filter).boxed(),
            Self::Spans(filter) => (*filter).boxed(),
        }
    }
}

/// A `RUST_LOG` value that does not parse, and the parser's reason.
type Refused = Option<(String, String)>;

/// The level filter of `rust_log` (`RUST_LOG`, in `tracing-subscriber`'s `EnvFilter` syntax;
/// [`DEFAULT_FILTER`] when unset or blank), and the value refused, with the parser's reason, when it
/// does not parse (the service then logs at [`DEFAULT_FILTER`] and says so at start-up).
///
/// A value of targets and levels alone becomes a [`Targets`] filter, which decides once per call
/// site. [`EnvFilter`] decides those the same way, but it also looks every span up in a table
/// behind a lock all threads share — when the span is created, entered, left and closed — in case a
/// directive names spans or field values: with a span per request, four lock round trips per
/// request for nothing. A value that names spans or field values (anything with `[`) needs that,
/// and gets [`EnvFilter`].
fn level_filter(rust_log: Option<&str>) -> (LogFilter, Refused) {
    let directives = rust_log
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .unwrap_or(DEFAULT_FILTER);
    let filter = match EnvFilter::builder().parse(directives) {
        Ok(filter) => filter,
        Err(error) => {
            let default = Targets::new().with_default(tracing::Level::INFO);
            return (
                LogFilter::Targets(Box::new(default)),
                Some((directives.to_owned(), error.to_string())),
            );
        }
    };
    if directives.contains('[') {
        return (LogFilter::Spans(Box::new(filter)), None);
    }
    let listed: Vec<&str> = directives
        .split(',')
        .map(str::trim)
        .filter(|directive| !directive.is_empty())
        .collect();
    match listed.join(",").parse::<Targets>() {
        Ok(targets) => (LogFilter::Targets(Box::new(targets)), None),
        Err(_) => (LogFilter::Spans(Box::new(filter)), None),
    }
}

/// Logs, once the subscriber is installed, that `RUST_LOG` was refused (see [`level_filter`]).
fn warn_refused(refused: Refused) {
    if let Some((value, error)) = refused {
        tracing::warn!(
            rust_log = %value,
            %error,
            "RUST_LOG does not parse; logging at {DEFAULT_FILTER}"
        );
    }
}

/// Keeps the log writer and the trace exporter running; dropping it flushes the log lines and the
/// spans still buffered (at shutdown).
#[must_use = "dropping the guard stops the log writer and the trace export"]
pub struct TelemetryGuard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    /// Declared last: dropped after the exporter, so that what it logs while flushing is written.
    _log_writer: tracing_appender::non_blocking::WorkerGuard,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("flushing the trace export failed: {error}");
        }
    }
}

/// Installs the global subscriber: level filter from `RUST_LOG` (default `info`; per target, e.g.
/// `info,myevents_http::layers=warn` to silence the per-request span and access log; a value that
/// does not parse is logged as a warning and `info` applies, see [`level_filter`]), format from
/// `LOG_FORMAT` (`json` |
/// `text`; default `text` on a terminal, `json` otherwise, as in a container), logs on standard
/// output, written by a thread of its own (lines are formatted where they are logged, then queued,
/// up to 16,384 of them; beyond that the logging thread waits, so no line is dropped; written at
/// most about 1 ms after they are logged, see [`FLUSH_PACE`]). In JSON each
/// line carries the fields of the current span once (`span`), not the list of every enclosing span. When `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. `http://collector:4318`),
/// spans are also exported over OTLP/HTTP (protobuf) as service `service` (feature `otlp`; the
/// exporter's standard `OTEL_*` variables apply, e.g. `OTEL_BSP_SCHEDULE_DELAY` in milliseconds).
/// Calling it twice is harmless (the second call installs nothing).
///
/// # Errors
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set but the binary was built without the `otlp` feature, or the
/// exporter cannot be built from it.
pub fn init(service: &'static str) -> anyhow::Result<TelemetryGuard> {
    let (filter, refused) = level_filter(crate::config::var("RUST_LOG").as_deref());
    let filter = filter.layer();
    let json = match crate::config::var("LOG_FORMAT").as_deref() {
        Some("json") => true,
        Some(_) => false,
        None => !std::io::stdout().is_terminal(),
    };
    let (writer, log_writer) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("log-writer")
        // Buffered: the writer thread writes what it drained from the queue in few large writes,
        // flushed each time the queue is empty, at most once per `FLUSH_PACE`.
        .finish(PacedFlush::new(
            std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout()),
            FLUSH_PACE,
        ));
    let writer = PerThread::new(writer);
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(false)
            .fmt_fields(json_lines::SpanFields)
            .event_format(json_lines::JsonLines)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer().with_writer(writer).boxed()
    };
    let endpoint = crate::config::var("OTEL_EXPORTER_OTLP_ENDPOINT");
    #[cfg(feature = "otlp")]
    {
        use opentelemetry::trace::TracerProvider as _;
        let provider = match endpoint {
            None => None,
            Some(_) => {
                let exporter = opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .build()
                    .map_err(|e| anyhow::anyhow!("OTEL_EXPORTER_OTLP_ENDPOINT: {e}"))?;
                let resource = opentelemetry_sdk::Resource::builder()
                    .with_service_name(service)
                    .build();
                Some(
                    opentelemetry_sdk::trace::SdkTracerProvider::builder()
                        .with_batch_exporter(exporter)
                        .with_resource(resource)
                        .build(),
                )
            }
        };
        let export = provider
            .as_ref()
            .map(|provider| tracing_opentelemetry::layer().with_tracer(provider.tracer(service)));
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .with(export)
            .try_init();
        warn_refused(refused);
        Ok(TelemetryGuard {
            provider,
            _log_writer: log_writer,
        })
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = service;
        if endpoint.is_some() {
            anyhow::bail!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this binary was built without the `otlp` \
                 feature (cargo build --features otlp)"
            );
        }
        let _ = tracing_subscriber::registry()
            .with(filter)
            .with(logs)
            .try_init();
        warn_refused(refused);
        Ok(TelemetryGuard {
            _log_writer: log_writer,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// What the paced writer passed on: the bytes, and when each flush reached it.
    #[derive(Clone, Default)]
    struct Recorded(Arc<Mutex<(Vec<u8>, Vec<Instant>)>>);

    impl Write for Recorded {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").0.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            self.0.lock().expect("lock").1.push(Instant::now());
            Ok(())
        }
    }

    /// The events a filter lets through, as `target level` lines: an event at every level under two
    /// targets, then the same inside a span named `http`.
    fn passed(filter: LogFilter) -> Vec<String> {
        use tracing_subscriber::layer::SubscriberExt;

        #[derive(Clone, Default)]
        struct Seen(Arc<Mutex<Vec<String>>>);
        impl<S: tracing::Subscriber> Layer<S> for Seen {
            fn on_event(
                &self,
                event: &tracing::Event<'_>,
                _: tracing_subscriber::layer::Context<'_, S>,
            ) {
                let meta = event.metadata();
                let line = format!("{} {}", meta.target(), meta.level());
                self.0.lock().expect("lock").push(line);
            }
        }

        fn every_level() {
            tracing::trace!(target: "myevents_http::layers", "t");
            tracing::debug!(target: "myevents_http::layers", "d");
            tracing::info!(target: "myevents_http::layers", "i");
            tracing::warn!(target: "myevents_http::layers", "w");
            tracing::trace!(target: "myevents_store", "t");
            tracing::debug!(target: "myevents_store", "d");
            tracing::info!(target: "myevents_store", "i");
            tracing::warn!(target: "myevents_store", "w");
        }

        let seen = Seen::default();
        let subscriber = Registry::default().with(filter.layer()).with(seen.clone());
        tracing::subscriber::with_default(subscriber, || {
            every_level();
            tracing::error_span!("http").in_scope(every_level);
        });
        seen.0.lock().expect("lock").clone()
    }

    #[test]
    fn targets_and_levels_alone_filter_by_call_site_as_env_filter_does() {
        for rust_log in [
            None,
            Some(""),
            Some("warn"),
            Some("info,myevents_http::layers=warn"),
            Some("debug,myevents_store=trace,"),
            Some("myevents_store"),
            Some("off"),
        ] {
            let (filter, refused) = level_filter(rust_log);
            assert!(refused.is_none(), "{rust_log:?}");
            assert!(matches!(filter, LogFilter::Targets(_)), "{rust_log:?}");
            let same = rust_log
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .unwrap_or(DEFAULT_FILTER);
            let env = EnvFilter::builder().parse(same).expect("parses");
            assert_eq!(
                passed(filter),
                passed(LogFilter::Spans(Box::new(env))),
                "{rust_log:?}"
            );
        }
        let (info, _) = level_filter(None);
        let passed = passed(info);
        assert!(passed.contains(&"myevents_store INFO".to_owned()));
        assert!(!passed.contains(&"myevents_store DEBUG".to_owned()));
    }

    #[test]
    fn a_directive_that_names_a_span_gets_the_span_filter_and_works() {
        let (filter, refused) = level_filter(Some("warn,[http]=debug"));
        assert!(refused.is_none());
        assert!(matches!(filter, LogFilter::Spans(_)));
        let passed = passed(filter);
        // Debug inside the span, warn outside it.
        assert_eq!(
            passed.iter().filter(|line| line.ends_with("DEBUG")).count(),
            2,
            "{passed:?}"
        );
        assert_eq!(
            passed.iter().filter(|line| line.ends_with("INFO")).count(),
            2,
            "{passed:?}"
        );
    }

    #[test]
    fn a_rust_log_that_does_not_parse_is_refused_with_its_reason_and_info_applies() {
        let (filter, refused) = level_filter(Some("myevents=loud"));
        let (value, reason) = refused.expect("refused");
        assert_eq!(value, "myevents=loud");
        assert!(!reason.is_empty());
        let passed = passed(filter);
        assert!(
            passed.contains(&"myevents_store INFO".to_owned()),
            "{passed:?}"
        );
        assert!(
            !passed.contains(&"myevents_store DEBUG".to_owned()),
            "{passed:?}"
        );
    }

    #[test]
    fn lines_from_every_thread_reach_their_own_writer_and_only_it() {
        let outputs = [Recorded::default(), Recorded::default()];
        let (handles, guards): (Vec<_>, Vec<_>) = outputs
            .iter()
            .map(|output| tracing_appender::non_blocking(output.clone()))
            .unzip();
        let writers: Arc<Vec<PerThread>> =
            Arc::new(handles.into_iter().map(PerThread::new).collect());
        let threads: Vec<_> = (0..3)
            .map(|thread| {
                let writers = Arc::clone(&writers);
                std::thread::spawn(move || {
                    for line in 0..100 {
                        // Each thread alternates between the two writers.
                        for (n, writer) in writers.iter().enumerate() {
                            writer
                                .make_writer()
                                .write_all(format!("{n}:{thread}:{line}\n").as_bytes())
                                .expect("write");
                        }
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        drop(guards);
        for (n, output) in outputs.iter().enumerate() {
            let bytes = output.0.lock().expect("lock").0.clone();
            let mut lines: Vec<String> = String::from_utf8(bytes)
                .expect("utf-8")
                .lines()
                .map(str::to_owned)
                .collect();
            lines.sort();
            let mut expected: Vec<String> = (0..3)
                .flat_map(|thread| (0..100).map(move |line| format!("{n}:{thread}:{line}")))
                .collect();
            expected.sort();
            assert_eq!(lines, expected, "writer {n}");
        }
    }

    #[test]
    fn flushes_are_a_pace_apart_and_every_line_is_passed_on_in_order() {
        let recorded = Recorded::default();
        let pace = Duration::from_millis(20);
        let mut paced = PacedFlush::new(recorded.clone(), pace);
        for line in 0..10 {
            paced
                .write_all(format!("{line}\n").as_bytes())
                .expect("write");
            paced.flush().expect("flush");
        }
        let (bytes, flushes) = recorded.0.lock().expect("lock").clone();
        let expected: String = (0..10).map(|line| format!("{line}\n")).collect();
        assert_eq!(String::from_utf8(bytes).expect("utf-8"), expected);
        assert_eq!(flushes.len(), 10);
        for pair in flushes.windows(2) {
            assert!(pair[1] - pair[0] >= pace, "{:?} apart", pair[1] - pair[0]);
        }
    }

    #[test]
    fn a_flush_after_a_quiet_pace_waits_for_nothing() {
        // An hour's pace: a flush that waited would never return within the test's time-out.
        let (done, finished) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let recorded = Recorded::default();
            let mut paced = PacedFlush::new(recorded.clone(), Duration::from_secs(3600));
            paced.write_all(b"first\n").expect("write");
            paced.flush().expect("flush");
            let _ = done.send(recorded.0.lock().expect("lock").1.len());
        });
        let flushed = finished
            .recv_timeout(Duration::from_secs(10))
            .expect("the first flush did not wait");
        assert_eq!(flushed, 1);
    }
}
