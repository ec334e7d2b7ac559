//! Logging and trace export set-up with `tracing`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

mod json_lines;

/// Log lines waiting for the writer thread at most; a burst beyond it makes the logging threads wait
/// (nothing is dropped).
const BUFFERED_LINES: usize = 16_384;

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
/// `info,tower_http=warn` to silence the per-request access log), format from `LOG_FORMAT` (`json` |
/// `text`; default `text` on a terminal, `json` otherwise, as in a container), logs on standard
/// output, written by a thread of its own (lines are formatted where they are logged, then queued,
/// up to 16,384 of them; beyond that the logging thread waits, so no line is dropped). In JSON each
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
        // flushed each time the queue is empty.
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stdout(),
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
