//! Logging and trace export set-up with `tracing`.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Keeps the trace exporter running; dropping it flushes the spans still buffered (at shutdown).
#[must_use = "dropping the guard stops the trace export"]
pub struct TelemetryGuard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
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

/// Installs the global subscriber: level filter from `RUST_LOG` (default `info`), format from
/// `LOG_FORMAT` (`json` | `text`; default `text` on a terminal, `json` otherwise, as in a container),
/// logs on standard output. When `OTEL_EXPORTER_OTLP_ENDPOINT` is set (e.g. `http://collector:4318`),
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
    let logs = if json {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stdout)
            .boxed()
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
        Ok(TelemetryGuard { provider })
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
        Ok(TelemetryGuard {})
    }
}
