//! `cargo run --release`: the whole MyEvents suite in one process (see the crate docs).

use std::io::Write;

use myevents::{Suite, SuiteConfig};

/// mimalloc: per-thread heaps, no lock contention between the runtime's threads under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs the suite; a failure (an invalid variable, a port in use) is written to standard error with
/// its causes, `error: <what>: <why>`, and the process exits with status 1.
#[tokio::main]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            let _ = std::io::stderr().write_all(format!("error: {error:#}\n").as_bytes());
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let config = SuiteConfig::from_env()?;
    // `myevents token --sub USER [--roles …] [--ttl …]`: a development token for AUTH_MODE=jwt.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !args.is_empty() {
        let command = myevents_host::cli::Command::parse(args)
            .ok()
            .filter(|c| matches!(c, myevents_host::cli::Command::Token { .. }))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "usage: myevents [token --sub USER [--roles R1,R2] [--ttl SECONDS]]"
                )
            })?;
        let status = myevents_host::cli::print_token(&command, &config.auth);
        if status != std::process::ExitCode::SUCCESS {
            anyhow::bail!("no token minted");
        }
        return Ok(());
    }
    let _telemetry = myevents_platform::telemetry::init("myevents")?;
    let suite = Suite::build(&config).await?;
    // Written without println!, which would panic if standard output were closed.
    let banner = format!(
        "MyEvents is running in embedded mode (in-process broker, in-memory stores).\n  \
         event service:   http://{}\n  booking service: http://{}\nStop with ctrl-c.\n",
        suite.event_addr(),
        suite.booking_addr()
    );
    let _ = std::io::stdout().write_all(banner.as_bytes());
    suite
        .run_until_stopped(myevents_platform::shutdown::signal())
        .await
}
