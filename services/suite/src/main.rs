//! `cargo run --release`: the whole MyEvents suite in one process (see the crate docs).

use myevents::{Suite, SuiteConfig};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    myevents_runtime::telemetry::init();
    let config = SuiteConfig::from_env()?;
    let suite = Suite::build(&config).await?;
    println!("MyEvents is running in embedded mode (in-process broker, in-memory stores).");
    println!("  event service:   http://{}", suite.event_addr());
    println!("  booking service: http://{}", suite.booking_addr());
    println!("Stop with ctrl-c.");
    suite
        .run_until_stopped(myevents_runtime::shutdown::signal())
        .await
}
