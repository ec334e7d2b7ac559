//! The event service binary: configuration from the environment (see README), then serve until
//! SIGTERM or ctrl-c. `event-service dead-letters replay` publishes the service's dead letters again
//! instead (after a fix), prints what it did as JSON and exits.

use myevents_event_service::config::EventServiceConfig;
use myevents_event_service::consumer::subscription;
use myevents_event_service::{Application, Dependencies};
use myevents_runtime::dead_letters::{Command, replay};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let command = Command::parse(std::env::args().skip(1)).unwrap_or_else(|usage| {
        eprintln!("{usage}");
        std::process::exit(2);
    });
    let _telemetry = myevents_runtime::telemetry::init("event-service")?;
    let config = EventServiceConfig::from_env()?;
    let broker = myevents_runtime::broker::build(&config.broker)?;
    if let Command::ReplayDeadLetters { idle } = command {
        let report = replay(&broker, &subscription(&config.queue), idle).await?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let deps = Dependencies::from_config(&config.store, broker).await?;
    let app = Application::build(&config, deps).await?;
    app.run_until_stopped(myevents_runtime::shutdown::signal())
        .await
}
