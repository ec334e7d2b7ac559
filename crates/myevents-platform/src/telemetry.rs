//! Logging and trace export set-up with `tracing`.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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
/// `info,myevents_http::layers=warn` to silence the per-request span and access log), format from
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
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
