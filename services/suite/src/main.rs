//! `cargo run --release`: the whole MyEvents suite in one process (see the crate docs).

use std::io::Write;

use myevents::{Suite, SuiteConfig};

/// jemalloc: per-thread caches (no lock contention between the runtime's threads under load), and
/// memory freed after start-up handed back to the system (BENCHMARKS.md: resident memory).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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

/// The embedded suite's command line: serve, or mint a development token.
#[derive(Debug, clap::Parser)]
#[command(
    name = "myevents",
    about = "MyEvents in one process: both services on an in-process broker and in-memory stores, \
             until ctrl-c (authentication off unless AUTH_MODE=jwt).",
    after_help = "Addresses: EVENT_LISTEN_URL (127.0.0.1:8181), BOOKING_LISTEN_URL (127.0.0.1:8282); \
                  every variable: docs/configuration.md."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<SuiteCommand>,
}

#[derive(Debug, clap::Subcommand)]
enum SuiteCommand {
    /// Print a development token signed with AUTH_HS256_SECRET (AUTH_MODE=jwt), then exit
    Token(myevents_host::cli::TokenArgs),
}

async fn run() -> anyhow::Result<()> {
    // `--help` is printed with status 0, a wrong argument with status 2 (clap's conventions).
    let cli = <Cli as clap::Parser>::parse();
    let config = SuiteConfig::from_env()?;
    // `myevents token --sub USER [--roles …] [--ttl …]`: a development token for AUTH_MODE=jwt.
    if let Some(SuiteCommand::Token(token)) = cli.command {
        let status = myevents_host::cli::print_token(&token, &config.auth);
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
