//! The booking service binary: configuration from the environment (see README), then serve until
//! SIGTERM or ctrl-c. Other commands (see [`myevents_runtime::cli`]): `booking-service healthcheck`
//! probes a running service (for images without a shell), `booking-service version` prints the build,
//! `booking-service dead-letters replay` publishes the service's dead letters again (after a fix),
//! prints what it did as JSON and exits.

use std::process::ExitCode;

use myevents_booking_service::config::BookingServiceConfig;
use myevents_booking_service::consumer::subscription;
use myevents_booking_service::{Application, Dependencies};
use myevents_runtime::build_info::BuildInfo;
use myevents_runtime::cli::{Command, run_local_command};
use myevents_runtime::dead_letters::replay;

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let command = Command::parse(std::env::args().skip(1)).unwrap_or_else(|usage| {
        eprintln!("{usage}");
        std::process::exit(2);
    });
    let build = BuildInfo::current("booking-service");
    let config = BookingServiceConfig::from_env()?;
    if let Some(status) = run_local_command(&command, build, config.listen).await {
        return Ok(status);
    }
    let _telemetry = myevents_runtime::telemetry::init("booking-service")?;
    tracing::info!(
        version = build.version,
        commit = build.commit,
        "starting booking-service"
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
