//! The event service binary: configuration from the environment (see README), then serve until
//! SIGTERM or ctrl-c. Other commands (see [`myevents_runtime::cli`]): `event-service healthcheck`
//! probes a running service (for images without a shell), `event-service version` prints the build,
//! `event-service dead-letters replay` publishes the service's dead letters again (after a fix),
//! prints what it did as JSON and exits.

use std::process::ExitCode;

use myevents_event_service::config::EventServiceConfig;
use myevents_event_service::consumer::subscription;
use myevents_event_service::{Application, Dependencies};
use myevents_runtime::build_info::BuildInfo;
use myevents_runtime::cli::{Command, run_local_command};
use myevents_runtime::dead_letters::replay;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let command = Command::parse(std::env::args().skip(1)).unwrap_or_else(|usage| {
        eprintln!("{usage}");
        std::process::exit(2);
    });
    let build = BuildInfo::current("event-service");
    let config = EventServiceConfig::from_env()?;
    if let Some(status) = run_local_command(&command, build, config.listen).await {
        return Ok(status);
    }
    let _telemetry = myevents_runtime::telemetry::init("event-service")?;
    tracing::info!(
        version = build.version,
        commit = build.commit,
        "starting event-service"
    );
    let broker = myevents_runtime::broker::build(&config.broker)?;
    if let Command::ReplayDeadLetters { idle } = command {
        let report = replay(&broker, &subscription(&config.queue), idle).await?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let deps = Dependencies::from_config(&config.store, broker).await?;
    let app = Application::build(&config, deps).await?;
    app.run_until_stopped(myevents_runtime::shutdown::signal())
        .await?;
    Ok(ExitCode::SUCCESS)
}
