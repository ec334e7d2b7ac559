//! The `main` of a service binary ([`run_binary`]).

use std::process::ExitCode;

use myevents_broker::Subscription;
use myevents_broker::config::BrokerConfig;
use myevents_http::tls::TlsFiles;
use myevents_platform::build_info::BuildInfo;
use myevents_platform::config::{listen_addr_or, var};
use myevents_store::config::StoreConfig;

use crate::application::{Application, Dependencies};
use crate::cli;
use crate::config::Config;
use crate::service::Service;

/// The `main` of a service binary: parses the command line ([`cli`]), reads the configuration, the
/// broker (`BROKER_KIND`, default `rabbitmq`) and the store (`STORE_KIND`, default `mongodb`) from the
/// environment, then serves until SIGTERM or ctrl-c — or runs `healthcheck`, `version`,
/// `dead-letters replay` or `token` and exits.
///
/// A failure (an invalid variable, an address in use, a broker or store kind the binary was built
/// without) is written to standard error with its chain of causes, `error: <what>: <why>`, and the
/// process exits with status 1 at once: nothing is in flight yet, and the broker client's background
/// tasks are not left to panic while the runtime is torn down around them.
pub async fn run_binary<S: Service>() -> ExitCode {
    match serve_binary::<S>().await {
        Ok(status) => status,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "{} failed", S::NAME);
            // Written without eprintln!, which would panic if standard error were closed.
            let line = format!("error: {error:#}\n");
            let _ = std::io::Write::write_all(&mut std::io::stderr(), line.as_bytes());
            std::process::exit(1);
        }
    }
}

async fn serve_binary<S: Service>() -> anyhow::Result<ExitCode> {
    // `--help` is printed on standard output with status 0; a wrong argument on standard error
    // with status 2 (clap's conventions).
    let command =
        cli::Command::parse(S::NAME, std::env::args().skip(1)).unwrap_or_else(|error| error.exit());
    let build = BuildInfo::current(S::NAME);
    // `version` and `healthcheck` need no configuration but the listen address and its TLS files.
    let listen = listen_addr_or("LISTEN_URL", S::DEFAULTS.listen)?;
    let tls = TlsFiles::from_env()?;
    if let Some(status) = cli::run_local_command(&command, build, listen, tls.as_ref()).await {
        return Ok(status);
    }
    if let cli::Command::ReplayDeadLetters { idle } = command {
        // Only the broker and the queue: an operator replays without the service's other settings.
        let _telemetry = myevents_platform::telemetry::init(S::NAME)?;
        let broker = myevents_messaging::broker::build(
            &BrokerConfig::from_env("rabbitmq")?,
            &myevents_messaging::broker::topology(),
        )?;
        let queue = var(S::DEFAULTS.queue_variable).unwrap_or_else(|| S::DEFAULTS.queue.to_owned());
        let subscription = Subscription::new(queue, S::CONSUMES);
        let report = myevents_messaging::dead_letters::replay(&broker, &subscription, idle).await?;
        println!("{}", serde_json::to_string(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    let config = Config::<S::Config>::from_env(&S::DEFAULTS)?;
    if let cli::Command::Token(token) = &command {
        return Ok(cli::print_token(token, &config.host.auth));
    }
    let _telemetry = myevents_platform::telemetry::init(S::NAME)?;
    tracing::info!(
        version = build.version,
        commit = build.commit,
        "starting {}",
        S::NAME
    );
    let broker = myevents_messaging::broker::build(
        &BrokerConfig::from_env("rabbitmq")?,
        &myevents_messaging::broker::topology(),
    )?;
    let store = StoreConfig::from_env("mongodb", S::DEFAULTS.database)?;
    let deps = Dependencies::from_config(&store, broker).await?;
    let app = Application::<S>::build(&config, deps).await?;
    app.run_until_stopped(myevents_platform::shutdown::signal())
        .await?;
    Ok(ExitCode::SUCCESS)
}
