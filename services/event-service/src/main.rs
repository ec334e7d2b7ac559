//! The event service binary: configuration from the environment (see README), then serve until
//! SIGTERM or ctrl-c.

use myevents_event_service::config::EventServiceConfig;
use myevents_event_service::{Application, Dependencies};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    myevents_runtime::telemetry::init();
    let config = EventServiceConfig::from_env()?;
    let broker = myevents_runtime::broker::build(&config.broker)?;
    let deps = Dependencies::from_config(&config.store, broker).await?;
    let app = Application::build(&config, deps).await?;
    app.run_until_stopped(myevents_runtime::shutdown::signal())
        .await
}
