//! [`Application`]: a service bound to its listener, its consumer, relay and jobs running, and how
//! it stops; [`Dependencies`]: the adapters it runs on.

use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Extension;
use myevents_http::auth::Authenticator;
use myevents_http::config::ServerConfig;
use myevents_http::idempotency::Idempotency;
use myevents_http::metrics::HttpMetrics;
use myevents_http::serve::Draining;
use myevents_http::tls::TlsTerminator;
use myevents_messaging::broker::Broker;
use myevents_messaging::outbox::OutboxWaker;
use myevents_messaging::{Messaging, MessagingParts};
use myevents_platform::build_info::BuildInfo;
use myevents_platform::metrics::MetricsServer;
use myevents_store::config::StoreConfig;
use myevents_store::factory::ServiceStore;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::probes::{self, Probes};
use crate::service::{Periodic, Service, api_document, subscription};

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
    router: myevents_http::layers::App,
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
    pub async fn build(
        config: &Config<S::Config>,
        deps: Dependencies<S::Store>,
    ) -> anyhow::Result<Self> {
        let host = &config.host;
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
        let idempotency = Idempotency::new(shared.idempotency, host.idempotency);
        let wiring = S::wire(config, store, waker.clone());
        let (api, _) = S::routes().split_for_parts();
        let reads = wiring.reads;
        let api = api.layer(Extension(idempotency)).with_state(wiring.state);
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
        let router = myevents_http::layers::with_common_layers(
            S::NAME,
            api,
            probes,
            &myevents_http::layers::Edge {
                auth: &auth,
                cors: &host.cors,
                server: &host.server,
                metrics: HttpMetrics::registered(),
                reads: reads.as_ref(),
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
    pub fn router(&self) -> myevents_http::layers::App {
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
        let served = myevents_http::serve::serve(
            myevents_http::serve::Listener {
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

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use async_trait::async_trait;
    use myevents_broker::memory::InMemoryBroker;
    use myevents_broker::{EventPublisher, EventSubscriber, HandlingError, Message};
    use myevents_broker::{MessageHandler, Subscription};
    use myevents_platform::config::ConfigError;
    use myevents_store::factory::BookingStore;
    use tokio::sync::{Notify, mpsc};
    use utoipa_axum::router::OpenApiRouter;

    use super::*;
    use crate::config::{FromEnv, HostConfig, HostDefaults};
    use crate::service::Wiring;

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

    /// The slow service's own setting: whom its handler tells that it started.
    #[derive(Default)]
    struct Started(Arc<Notify>);

    impl FromEnv for Started {
        fn from_env() -> Result<Self, ConfigError> {
            Ok(Self::default())
        }
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
        type Config = Started;
        type Store = BookingStore;
        type State = ();

        fn routes() -> OpenApiRouter<()> {
            OpenApiRouter::new()
        }

        fn wire(config: &Config<Started>, _store: BookingStore, _waker: OutboxWaker) -> Wiring<()> {
            Wiring {
                state: (),
                handler: Arc::new(Slow {
                    started: Arc::clone(&config.service.0),
                }),
                periodic: Vec::new(),
                reads: None,
            }
        }
    }

    #[tokio::test]
    async fn shutdown_ends_within_its_budget_and_the_message_in_hand_is_delivered_again() {
        let broker = InMemoryBroker::default();
        let mut host = HostConfig::ephemeral("slow");
        host.server.shutdown_timeout = Duration::from_millis(1500);
        host.server.metrics_listen = None;
        let config = Config {
            host,
            service: Started::default(),
        };
        let deps = Dependencies::in_memory(Broker::in_memory(&broker));
        let app = Application::<SlowService>::build(&config, deps)
            .await
            .expect("build");
        broker
            .publish(&Message::new("slowEvent", "k", b"{}".to_vec()))
            .await
            .expect("publish");
        tokio::time::timeout(Duration::from_secs(5), config.service.0.notified())
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
