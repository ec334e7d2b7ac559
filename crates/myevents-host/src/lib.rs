//! # myevents-host
//!
//! The one service host both MyEvents services run in. A service declares only what is its own — its
//! configuration, its store, its routes, its consumer's handler and its periodic jobs — by
//! implementing [`Service`]; the host does the rest the same way for every service:
//!
//! - binds the listener (port 0 allowed) and the metrics server, puts the routes behind the shared
//!   middleware (`myevents_http::server::with_common_layers`) with `/healthz`, `/readyz` (store,
//!   consumer, shutdown) and `/version`;
//! - starts the consumer of the service's subscription and the outbox relay
//!   (`myevents_messaging::Messaging`), and the periodic jobs;
//! - serves until shutdown, then drains requests, stops the jobs and the consumer, lets the relay
//!   publish what is pending and closes the publisher ([`Application::run_until_stopped`]);
//! - runs the binary's command line ([`run_binary`], [`cli`]).
//!
//! ```no_run
//! # async fn demo<S: myevents_host::Service>(config: S::Config) -> anyhow::Result<()> {
//! use myevents_host::{Application, Dependencies};
//! use myevents_messaging::broker::Broker;
//! use myevents_broker::memory::InMemoryBroker;
//!
//! let deps = Dependencies::in_memory(Broker::in_memory(&InMemoryBroker::default()));
//! let app = Application::<S>::build(&config, deps).await?;
//! println!("listening on {}", app.local_addr());
//! app.run_until_stopped(myevents_platform::shutdown::signal()).await?;
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use myevents_broker::config::BrokerConfig;
use myevents_broker::{MessageHandler, Subscription};
use myevents_http::auth::{AuthConfig, AuthMode, Authenticator};
use myevents_http::config::{CorsOrigins, ServerConfig};
use myevents_http::idempotency::IdempotencyConfig;
use myevents_http::server::Draining;
use myevents_http::tls::{TlsFiles, TlsTerminator};
use myevents_messaging::broker::Broker;
use myevents_messaging::config::RelayConfig;
use myevents_messaging::outbox::OutboxWaker;
use myevents_messaging::{Messaging, MessagingParts};
use myevents_platform::build_info::BuildInfo;
use myevents_platform::config::{ConfigError, listen_addr_or, seconds_or, var};
use myevents_platform::metrics::MetricsServer;
use myevents_store::config::StoreConfig;
use myevents_store::factory::ServiceStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub mod cli;
mod probes;

use probes::Probes;

/// The defaults that tell one service's environment from another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostDefaults {
    /// `LISTEN_URL` when unset (`0.0.0.0:8181`, `0.0.0.0:8282`).
    pub listen: &'static str,
    /// `METRICS_LISTEN_URL` when unset (`127.0.0.1:9100`, `127.0.0.1:9101`: loopback only, so that
    /// a deployment exposes metrics to its scraper on purpose).
    pub metrics: &'static str,
    /// The variable naming the service's queue (or consumer group), e.g. `BOOKING_QUEUE`.
    pub queue_variable: &'static str,
    /// The queue when that variable is unset (the reference's: `events-service`, `booking`).
    pub queue: &'static str,
    /// `MONGO_DATABASE` when unset (`myevents`, `myevents_booking`).
    pub database: &'static str,
}

/// What the host reads for every service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// HTTP listen address (`LISTEN_URL`; `:8181` accepted; port 0 picks a free port).
    pub listen: SocketAddr,
    /// Origins allowed by CORS (`CORS_ALLOWED_ORIGINS`, default `*`).
    pub cors: CorsOrigins,
    /// Limits, metrics port (`METRICS_LISTEN_URL`) and shutdown.
    pub server: ServerConfig,
    /// The outbox relay (`OUTBOX_RELAY`, `OUTBOX_POLL_INTERVAL`).
    pub relay: RelayConfig,
    /// The subscription (AMQP queue / Kafka consumer group) the service consumes.
    pub queue: String,
    /// How long idempotency keys are kept and held (`IDEMPOTENCY_KEY_TTL`, `IDEMPOTENCY_LEASE`).
    pub idempotency: IdempotencyConfig,
    /// How long the consume loop may keep failing before `/healthz` answers 503
    /// (`CONSUMER_FAILING_LIMIT`, seconds, default 120; see `ConsumerStatus::failing_for`).
    pub consumer_failing_limit: Duration,
    /// How callers are authenticated (`AUTH_MODE`, default `jwt` for the service binaries; see
    /// `myevents_http::auth::AuthConfig::from_env`).
    pub auth: AuthConfig,
    /// HTTPS on the listener (`TLS_CERT_FILE`, `TLS_KEY_FILE`); `None` for plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// `CONSUMER_FAILING_LIMIT` when unset.
pub const DEFAULT_CONSUMER_FAILING_LIMIT: Duration = Duration::from_secs(120);

impl HostConfig {
    /// Reads the variables above, with a service's `defaults`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    pub fn from_env(defaults: &HostDefaults) -> Result<Self, ConfigError> {
        Ok(Self {
            listen: listen_addr_or("LISTEN_URL", defaults.listen)?,
            cors: CorsOrigins::from_env(CorsOrigins::Any)?,
            server: ServerConfig::from_env(defaults.metrics)?,
            relay: RelayConfig::from_env()?,
            queue: var(defaults.queue_variable).unwrap_or_else(|| defaults.queue.to_owned()),
            idempotency: IdempotencyConfig::from_env()?,
            consumer_failing_limit: seconds_or(
                "CONSUMER_FAILING_LIMIT",
                DEFAULT_CONSUMER_FAILING_LIMIT,
            )?,
            auth: AuthConfig::from_env(AuthMode::Jwt)?,
            tls: TlsFiles::from_env()?,
        })
    }

    /// For tests: every default, listening on free ports of 127.0.0.1, consuming `queue`, with
    /// authentication off.
    pub fn ephemeral(queue: impl Into<String>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            cors: CorsOrigins::Any,
            server: ServerConfig::ephemeral(),
            relay: RelayConfig::default(),
            queue: queue.into(),
            idempotency: IdempotencyConfig::default(),
            consumer_failing_limit: DEFAULT_CONSUMER_FAILING_LIMIT,
            auth: AuthConfig::Off,
            tls: None,
        }
    }
}

/// A future a periodic job returns.
pub type JobFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A job the host runs every `every` while the service runs (the first run one period after the
/// start), and stops before the consumer at shutdown, abandoning a run in progress: a job must be
/// safe to interrupt and run again.
pub struct Periodic {
    /// Its name, for the logs.
    pub name: &'static str,
    /// Time between two runs.
    pub every: Duration,
    /// One run.
    pub job: Box<dyn Fn() -> JobFuture + Send + Sync>,
}

/// What a service hands the host once its use cases are built.
pub struct Wiring {
    /// The service's API routes, state applied (the host adds the probes and the middleware).
    pub api: Router,
    /// Handles the messages of the service's subscription.
    pub handler: Arc<dyn MessageHandler>,
    /// Jobs to run periodically.
    pub periodic: Vec<Periodic>,
}

/// What one service declares to run in the host.
pub trait Service: 'static {
    /// Its name in logs, metrics (the `service` label) and `/version`, e.g. `booking-service`.
    const NAME: &'static str;
    /// The defaults of its environment.
    const DEFAULTS: HostDefaults;
    /// The event names its subscription is bound to.
    const CONSUMES: &'static [&'static str];
    /// What its OpenAPI document says about it (title, description, default port).
    const ABOUT: myevents_http::openapi::About;
    /// Its configuration.
    type Config: Send + Sync;
    /// Its store (`myevents_store::factory`).
    type Store: ServiceStore;

    /// Reads its configuration from the environment.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first invalid variable.
    fn config_from_env() -> Result<Self::Config, ConfigError>;

    /// The part of its configuration the host reads.
    fn host_config(config: &Self::Config) -> &HostConfig;

    /// The OpenAPI description of its API routes (those of [`Wiring::api`]); see [`api_document`]
    /// for the whole document.
    fn openapi() -> utoipa::openapi::OpenApi;

    /// Real answers of its operations, shown as their examples (none by default).
    fn response_examples() -> Vec<myevents_http::openapi::ResponseExample> {
        Vec::new()
    }

    /// Builds its use cases over `store` (their writes wake the relay through `waker`) and returns
    /// its routes, handler and jobs.
    fn wire(config: &Self::Config, store: Self::Store, waker: OutboxWaker) -> Wiring;
}

/// The OpenAPI 3.1 document of service `S` as `frontend-contract/` holds it, both authentication
/// modes at once: its API routes ([`Service::openapi`]), the probes and the documentation routes,
/// completed by [`myevents_http::openapi::finish`]. A running service serves it at
/// `GET /openapi.json` as its `AUTH_MODE` answers ([`myevents_http::openapi::for_auth_mode`]).
pub fn api_document<S: Service>() -> serde_json::Value {
    let mut api = S::openapi();
    api.merge(probes::routes().into_openapi());
    api.merge(myevents_http::openapi::docs_paths());
    myevents_http::openapi::finish(api, &S::ABOUT, &S::response_examples())
}

/// The subscription of `S` with `config`: its queue bound to [`Service::CONSUMES`].
pub fn subscription<S: Service>(config: &HostConfig) -> Subscription {
    Subscription::new(&config.queue, S::CONSUMES)
}

/// The adapters a service runs on: its store and the broker.
#[derive(Clone)]
pub struct Dependencies<St> {
    /// The service's store.
    pub store: St,
    /// The broker: where its outbox is published and its subscription consumed.
    pub broker: Broker,
}

impl<St: ServiceStore> Dependencies<St> {
    /// An in-memory store with `broker`.
    pub fn in_memory(broker: Broker) -> Self {
        Self {
            store: St::in_memory(),
            broker,
        }
    }

    /// The store `store` names (see `myevents_store::factory::open`), with `broker`.
    ///
    /// # Errors
    /// A malformed `MONGO_URL`, or a store kind this binary was built without.
    pub async fn from_config(store: &StoreConfig, broker: Broker) -> anyhow::Result<Self> {
        Ok(Self {
            store: myevents_store::factory::open(store).await?,
            broker,
        })
    }
}

/// A periodic job, running.
struct RunningJob {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningJob {
    fn start(periodic: Periodic) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(periodic.every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                tracing::debug!(job = periodic.name, "periodic job");
                // A run in progress at shutdown is abandoned: a job must be safe to interrupt and
                // to run again (the reconciliation is).
                tokio::select! {
                    () = stopped.cancelled() => return,
                    () = (periodic.job)() => {}
                }
            }
        });
        Self { stop, task }
    }

    async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Service `S`, bound to its listener, its consumer, relay and jobs running.
pub struct Application<S> {
    listener: TcpListener,
    tls: Option<TlsTerminator>,
    local_addr: SocketAddr,
    router: Router,
    messaging: Messaging,
    metrics: Option<MetricsServer>,
    draining: Draining,
    server: ServerConfig,
    jobs: Vec<RunningJob>,
    service: PhantomData<fn() -> S>,
}

impl<S: Service> Application<S> {
    /// Binds the listener and the metrics server, starts the consumer (it connects in the background
    /// and retries until the broker is reachable), the relay and the periodic jobs.
    ///
    /// # Errors
    /// When an address cannot be bound (the error names `LISTEN_URL` or `METRICS_LISTEN_URL`) or the
    /// consumer cannot be started.
    pub async fn build(config: &S::Config, deps: Dependencies<S::Store>) -> anyhow::Result<Self> {
        let host = S::host_config(config);
        let listener = TcpListener::bind(host.listen)
            .await
            .with_context(|| format!("cannot listen on {} (LISTEN_URL)", host.listen))?;
        let local_addr = listener.local_addr()?;
        let tls = host
            .tls
            .as_ref()
            .map(TlsTerminator::start)
            .transpose()
            .context("TLS_CERT_FILE, TLS_KEY_FILE")?;
        let auth = Authenticator::start(&host.auth).await?;
        if !auth.is_on() {
            tracing::warn!(
                service = S::NAME,
                "AUTH_MODE=off: every caller is trusted as the user its X-User-Id header names, with \
                 the organiser role; anyone who can reach this port can act as anyone. Use \
                 AUTH_MODE=jwt wherever others can connect"
            );
        }
        let store = deps.store;
        let shared = store.shared().clone();
        let waker = OutboxWaker::default();
        let wiring = S::wire(config, store, waker.clone());
        let parts = MessagingParts {
            subscription: subscription::<S>(host),
            handler: wiring.handler,
            outbox: shared.outbox,
            waker,
        };
        // Every address is bound before the broker is contacted, so that a port in use fails the
        // start before any connection exists.
        let metrics = MetricsServer::start_if_configured(host.server.metrics_listen).await?;
        let messaging = Messaging::start(S::NAME, &deps.broker, parts, host.relay).await?;
        myevents_http::metrics::register();
        let draining = Draining::default();
        let (probe_routes, _) = probes::routes().split_for_parts();
        let probes = probe_routes
            .with_state(Probes {
                store: shared.health,
                consumer: messaging.consumer_status(),
                draining: draining.clone(),
                consumer_failing_limit: host.consumer_failing_limit,
                authentication: host.auth.mode_name(),
                build: BuildInfo::current(S::NAME),
            })
            .merge(myevents_http::openapi::docs_router(
                &myevents_http::openapi::for_auth_mode(&api_document::<S>(), host.auth.mode()),
            ));
        let router = myevents_http::server::with_common_layers(
            S::NAME,
            wiring.api,
            probes,
            &myevents_http::server::Edge {
                auth: &auth,
                cors: &host.cors,
                server: &host.server,
            },
        );
        Ok(Self {
            listener,
            tls,
            local_addr,
            router,
            messaging,
            metrics,
            draining,
            server: host.server,
            jobs: wiring.periodic.into_iter().map(RunningJob::start).collect(),
            service: PhantomData,
        })
    }

    /// The address the service listens on (with the port actually bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of its `/metrics` server, if it runs one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// The whole HTTP router, middleware included, for tests that call it without a socket.
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    /// Whether the consumer is attached to the broker now.
    pub fn consumer_attached(&self) -> bool {
        self.messaging.consumer_status().is_attached()
    }

    /// Serves until `shutdown` resolves; then, all within `SHUTDOWN_TIMEOUT` counted from the signal
    /// (see `ServerConfig::shutdown_timeout`): lets requests in progress finish (within their share),
    /// stops the periodic jobs, stops the consumer after the message in hand, publishes what the
    /// outbox still holds, and closes the publisher, each with what the stages before it left. What
    /// does not finish in time is not lost: an unacknowledged message is delivered again, an
    /// unpublished one stays in the outbox.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        tracing::info!(addr = %self.local_addr, service = S::NAME, scheme, "http server listening");
        let signalled = Arc::new(std::sync::OnceLock::new());
        let shutdown = {
            let signalled = Arc::clone(&signalled);
            async move {
                shutdown.await;
                let _ = signalled.set(tokio::time::Instant::now());
            }
        };
        let served = myevents_http::server::serve(
            myevents_http::server::Listener {
                tcp: self.listener,
                tls: self.tls,
            },
            self.router,
            shutdown,
            self.draining,
            &self.server,
        )
        .await;
        let since_signal = signalled
            .get()
            .map_or(Duration::ZERO, tokio::time::Instant::elapsed);
        let budget = self.server.shutdown_timeout.saturating_sub(since_signal);
        let deadline = tokio::time::Instant::now() + budget;
        for job in self.jobs {
            job.stop().await;
        }
        self.messaging
            .shutdown(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await;
        if let Some(metrics) = self.metrics {
            metrics.stop().await;
        }
        tracing::info!(service = S::NAME, "stopped");
        Ok(served?)
    }
}

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
    let config = S::config_from_env()?;
    let host = S::host_config(&config);
    if let cli::Command::Token(token) = &command {
        return Ok(cli::print_token(token, &host.auth));
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use async_trait::async_trait;
    use myevents_broker::memory::InMemoryBroker;
    use myevents_broker::{EventPublisher, EventSubscriber, HandlingError, Message};
    use myevents_store::factory::BookingStore;
    use tokio::sync::{Notify, mpsc};

    use super::*;

    /// A handler that takes a minute, telling `started` when it begins.
    struct Slow {
        started: Arc<Notify>,
    }

    #[async_trait]
    impl MessageHandler for Slow {
        async fn handle(&self, _message: &Message) -> Result<(), HandlingError> {
            self.started.notify_one();
            tokio::time::sleep(Duration::from_secs(60)).await;
            Ok(())
        }
    }

    /// Hands every message it gets to the test.
    struct Forward(mpsc::UnboundedSender<Message>);

    #[async_trait]
    impl MessageHandler for Forward {
        async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
            let _ = self.0.send(message.clone());
            Ok(())
        }
    }

    struct SlowConfig {
        host: HostConfig,
        started: Arc<Notify>,
    }

    /// A service whose consumer is slow, and nothing else.
    struct SlowService;

    impl Service for SlowService {
        const NAME: &'static str = "slow-service";
        const DEFAULTS: HostDefaults = HostDefaults {
            listen: "127.0.0.1:0",
            metrics: "127.0.0.1:0",
            queue_variable: "SLOW_QUEUE",
            queue: "slow",
            database: "slow",
        };
        const CONSUMES: &'static [&'static str] = &["slowEvent"];
        const ABOUT: myevents_http::openapi::About = myevents_http::openapi::About {
            title: "Slow",
            description: "Handles slowly.",
            port: 0,
        };
        type Config = SlowConfig;
        type Store = BookingStore;

        fn openapi() -> utoipa::openapi::OpenApi {
            utoipa::openapi::OpenApi::default()
        }

        fn config_from_env() -> Result<SlowConfig, ConfigError> {
            Ok(SlowConfig {
                host: HostConfig::from_env(&Self::DEFAULTS)?,
                started: Arc::default(),
            })
        }

        fn host_config(config: &SlowConfig) -> &HostConfig {
            &config.host
        }

        fn wire(config: &SlowConfig, _store: BookingStore, _waker: OutboxWaker) -> Wiring {
            Wiring {
                api: Router::new(),
                handler: Arc::new(Slow {
                    started: Arc::clone(&config.started),
                }),
                periodic: Vec::new(),
            }
        }
    }

    #[tokio::test]
    async fn shutdown_ends_within_its_budget_and_the_message_in_hand_is_delivered_again() {
        let broker = InMemoryBroker::default();
        let mut host = HostConfig::ephemeral("slow");
        host.server.shutdown_timeout = Duration::from_millis(1500);
        host.server.metrics_listen = None;
        let config = SlowConfig {
            host,
            started: Arc::default(),
        };
        let deps = Dependencies::in_memory(Broker::in_memory(&broker));
        let app = Application::<SlowService>::build(&config, deps)
            .await
            .expect("build");
        broker
            .publish(&Message::new("slowEvent", "k", b"{}".to_vec()))
            .await
            .expect("publish");
        tokio::time::timeout(Duration::from_secs(5), config.started.notified())
            .await
            .expect("the handler started");

        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let running = tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let signalled = Instant::now();
        stop.send(()).expect("signal");
        running.await.expect("task").expect("stopped");
        let took = signalled.elapsed();
        assert!(
            took < Duration::from_millis(2500),
            "stopped {took:?} after the signal, budget 1.5 s"
        );

        let (sender, mut received) = mpsc::unbounded_channel();
        let _next = broker
            .subscribe(
                &Subscription::new("slow", SlowService::CONSUMES),
                Arc::new(Forward(sender)),
            )
            .await
            .expect("subscribe");
        let again = tokio::time::timeout(Duration::from_secs(5), received.recv())
            .await
            .expect("delivered again")
            .expect("a message");
        assert_eq!(again.name, "slowEvent");
    }
}
