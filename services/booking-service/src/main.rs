//! The booking service binary: configuration from the environment (see README), then serve until
//! SIGTERM or ctrl-c.

use myevents_booking_service::config::BookingServiceConfig;
use myevents_booking_service::{Application, Dependencies};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    myevents_runtime::telemetry::init();
    let config = BookingServiceConfig::from_env()?;
    let broker = myevents_runtime::broker::build(&config.broker)?;
    let deps = Dependencies::from_config(&config.store, broker).await?;
    let app = Application::build(&config, deps).await?;
    app.run_until_stopped(myevents_runtime::shutdown::signal())
        .await
}
