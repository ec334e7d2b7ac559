//! Building and running the booking service.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use myevents_runtime::broker::Broker;
use myevents_runtime::config::ServerConfig;
use myevents_runtime::config::StoreConfig;
use myevents_runtime::http::Draining;
use myevents_runtime::idempotency::Idempotency;
use myevents_runtime::messaging::Messaging;
use myevents_runtime::metrics::MetricsServer;
use myevents_store::memory::{
    InMemoryBookingRepository, InMemoryIdempotencyRepository, InMemoryOutbox,
};
use myevents_store::{AlwaysReady, BookingRepository, IdempotencyRepository, Outbox, StoreHealth};
use tokio::net::TcpListener;

use crate::config::BookingServiceConfig;
use crate::consumer::{EventCreatedHandler, subscription};
use crate::http::{AppState, router};

/// The adapters the service runs on.
#[derive(Clone)]
pub struct Dependencies {
    /// Seat inventory and bookings.
    pub repository: Arc<dyn BookingRepository>,
    /// Whether the store can serve (readiness).
    pub store_health: Arc<dyn StoreHealth>,
    /// Messages stored with the bookings, waiting to be published.
    pub outbox: Arc<dyn Outbox>,
    /// What each `Idempotency-Key` did.
    pub idempotency: Arc<dyn IdempotencyRepository>,
    /// The broker.
    pub broker: Broker,
}

impl Dependencies {
    /// An in-memory repository with the given broker.
    pub fn in_memory(broker: Broker) -> Self {
        let outbox = InMemoryOutbox::default();
        Self {
            repository: Arc::new(InMemoryBookingRepository::new(outbox.clone())),
            store_health: Arc::new(AlwaysReady),
            outbox: Arc::new(outbox),
            idempotency: Arc::new(InMemoryIdempotencyRepository::default()),
            broker,
        }
    }

    /// The repository `store` names, with the given broker. A MongoDB that is down does not fail this:
    /// the store creates its indexes once the database answers, and readiness says so meanwhile.
    ///
    /// # Errors
    /// A malformed `MONGO_URL`, or a store kind this binary was built without (feature `mongodb`).
    pub async fn from_config(store: &StoreConfig, broker: Broker) -> anyhow::Result<Self> {
        match store {
            StoreConfig::Memory => Ok(Self::in_memory(broker)),
            #[cfg(feature = "mongodb")]
            StoreConfig::MongoDb(config) => {
                use myevents_store::mongo::{
                    MongoBookingRepository, MongoIdempotencyRepository, MongoOutbox, MongoStore,
                    booking_service_indexes,
                };
                let mongo = MongoStore::start(config, booking_service_indexes()).await?;
                Ok(Self {
                    repository: Arc::new(MongoBookingRepository::new(&mongo)),
                    outbox: Arc::new(MongoOutbox::for_booking_service(&mongo)),
                    idempotency: Arc::new(MongoIdempotencyRepository::new(&mongo)),
                    store_health: Arc::new(mongo),
                    broker,
                })
            }
            #[cfg(not(feature = "mongodb"))]
            StoreConfig::MongoDb(_) => anyhow::bail!(
                "STORE_KIND=mongodb, but this binary was built without the `mongodb` feature"
            ),
        }
    }
}

/// The booking service, bound to its listener, its consumer running.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    messaging: Messaging,
    metrics: Option<MetricsServer>,
    draining: Draining,
    server: ServerConfig,
    sweep: SeatReturnSweep,
}

/// A background task that finishes seat returns a crash interrupted (see
/// [`BookingRepository::finish_seat_returns`]).
struct SeatReturnSweep {
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl SeatReturnSweep {
    /// Cancellations younger than this are left to the request still giving their seats back.
    const GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(30);

    fn start(repository: Arc<dyn BookingRepository>, every: std::time::Duration) -> Self {
        let stop = tokio_util::sync::CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                let cut_off = chrono::Utc::now() - Self::GRACE;
                match repository.finish_seat_returns(cut_off).await {
                    Ok(0) => {}
                    Ok(finished) => tracing::warn!(finished, "seat returns finished by the sweep"),
                    Err(error) => tracing::warn!(%error, "seat return sweep failed; next time"),
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

impl Application {
    /// Binds the listener and starts consuming `eventCreated` (the consumer connects in the background
    /// and retries until the broker is reachable).
    ///
    /// # Errors
    /// When the address cannot be bound or the consumer cannot be started.
    pub async fn build(config: &BookingServiceConfig, deps: Dependencies) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (LISTEN_URL)", config.listen))?;
        let local_addr = listener.local_addr()?;
        let handler = Arc::new(EventCreatedHandler {
            repository: Arc::clone(&deps.repository),
            default_capacity: config.default_capacity,
        });
        let messaging = Messaging::start(
            &deps.broker,
            &subscription(&config.queue),
            handler,
            Arc::clone(&deps.outbox),
            config.relay,
        )
        .await?;
        let sweep = SeatReturnSweep::start(Arc::clone(&deps.repository), config.seat_return_sweep);
        crate::metrics::register();
        let draining = Draining::default();
        let metrics = MetricsServer::start_if_configured(config.server.metrics_listen).await?;
        let state = AppState {
            draining: draining.clone(),
            repository: deps.repository,
            store_health: deps.store_health,
            consumer: messaging.consumer_status(),
            outbox_waker: messaging.outbox_waker(),
            max_seats_per_booking: config.max_seats_per_booking,
            idempotency: Idempotency::new(deps.idempotency, config.idempotency),
        };
        Ok(Self {
            listener,
            local_addr,
            router: router(state, &config.cors, &config.server),
            metrics,
            draining,
            server: config.server,
            messaging,
            sweep,
        })
    }

    /// The address of its `/metrics` server, if it runs one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::local_addr)
    }

    /// The address the service listens on (with the port actually bound).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Whether the consumer is attached to the broker now.
    pub fn consumer_attached(&self) -> bool {
        self.messaging.consumer_status().is_attached()
    }

    /// Serves until `shutdown` resolves; then lets requests in progress finish, stops the consumer
    /// after the message in hand, publishes what the outbox still holds (at most 5 s), and closes the
    /// publisher.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr, service = "booking-service", "http server listening");
        let served = myevents_runtime::http::serve(
            self.listener,
            self.router,
            shutdown,
            self.draining,
            &self.server,
        )
        .await;
        self.sweep.stop().await;
        self.messaging.shutdown().await;
        if let Some(metrics) = self.metrics {
            metrics.stop().await;
        }
        tracing::info!(service = "booking-service", "stopped");
        Ok(served?)
    }
}
