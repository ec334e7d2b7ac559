//! The event service binary: configuration from the environment (see docs/configuration.md), then serve until
//! SIGTERM or ctrl-c. Other commands (see `myevents_host::cli`): `event-service healthcheck`
//! probes a running service (for images without a shell), `event-service version` prints the build,
//! `event-service dead-letters replay` publishes the service's dead letters again (after a fix),
//! prints what it did as JSON and exits.

use std::process::ExitCode;

/// jemalloc: per-thread caches (no lock contention between the runtime's threads under load), and
/// memory freed after start-up handed back to the system (BENCHMARKS.md: resident memory).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    myevents_host::run_binary::<myevents_event_service::EventServiceSpec>().await
}
