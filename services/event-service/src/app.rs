//! Building and running the event service.

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
    InMemoryEventRepository, InMemoryIdempotencyRepository, InMemoryLocationRepository,
    InMemoryOutbox,
};
use myevents_store::{
    AlwaysReady, EventRepository, IdempotencyRepository, LocationRepository, Outbox, StoreHealth,
};
use tokio::net::TcpListener;

use crate::config::EventServiceConfig;
use crate::consumer::{EventBookedHandler, subscription};
use crate::http::{AppState, router};

/// The adapters the service runs on.
#[derive(Clone)]
pub struct Dependencies {
    /// Where events are stored.
    pub events: Arc<dyn EventRepository>,
    /// Where locations are stored.
    pub locations: Arc<dyn LocationRepository>,
    /// Whether the store can serve (readiness).
    pub store_health: Arc<dyn StoreHealth>,
    /// Messages stored with the state changes, waiting to be published.
    pub outbox: Arc<dyn Outbox>,
    /// What each `Idempotency-Key` did.
    pub idempotency: Arc<dyn IdempotencyRepository>,
    /// The broker: where domain events are published and `eventBooked` comes from.
    pub broker: Broker,
}

impl Dependencies {
    /// In-memory repositories with the given broker.
    pub fn in_memory(broker: Broker) -> Self {
        let outbox = InMemoryOutbox::default();
        Self {
            events: Arc::new(InMemoryEventRepository::new(outbox.clone())),
            locations: Arc::new(InMemoryLocationRepository::new(outbox.clone())),
            store_health: Arc::new(AlwaysReady),
            outbox: Arc::new(outbox),
            idempotency: Arc::new(InMemoryIdempotencyRepository::default()),
            broker,
        }
    }

    /// The repositories `store` names, with the given broker. A MongoDB that is down does not fail
    /// this: the store creates its indexes once the database answers, and readiness says so meanwhile.
    ///
    /// # Errors
    /// A malformed `MONGO_URL`, or a store kind this binary was built without (feature `mongodb`).
    pub async fn from_config(store: &StoreConfig, broker: Broker) -> anyhow::Result<Self> {
        match store {
            StoreConfig::Memory => Ok(Self::in_memory(broker)),
            #[cfg(feature = "mongodb")]
            StoreConfig::MongoDb(config) => {
                use myevents_store::mongo::{
                    MongoEventRepository, MongoIdempotencyRepository, MongoLocationRepository,
                    MongoOutbox, MongoStore, event_service_indexes,
                };
                let mongo = MongoStore::start(config, event_service_indexes()).await?;
                Ok(Self {
                    events: Arc::new(MongoEventRepository::new(&mongo)),
                    locations: Arc::new(MongoLocationRepository::new(&mongo)),
                    outbox: Arc::new(MongoOutbox::for_event_service(&mongo)),
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

/// The event service, bound to its listener and ready to serve.
pub struct Application {
    listener: TcpListener,
    local_addr: SocketAddr,
    router: axum::Router,
    messaging: Messaging,
    metrics: Option<MetricsServer>,
    draining: Draining,
    server: ServerConfig,
}

impl Application {
    /// Binds the listener (`config.listen`; port 0 picks a free port) and assembles the routes.
    ///
    /// # Errors
    /// When the address cannot be bound.
    pub async fn build(config: &EventServiceConfig, deps: Dependencies) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (LISTEN_URL)", config.listen))?;
        let local_addr = listener.local_addr()?;
        let handler = Arc::new(EventBookedHandler {
            events: Arc::clone(&deps.events),
        });
        let messaging = Messaging::start(
            &deps.broker,
            &subscription(&config.queue),
            handler,
            Arc::clone(&deps.outbox),
            config.relay,
        )
        .await?;
        let draining = Draining::default();
        let metrics = MetricsServer::start_if_configured(config.server.metrics_listen).await?;
        let state = AppState {
            draining: draining.clone(),
            consumer: messaging.consumer_status(),
            events: deps.events,
            locations: deps.locations,
            store_health: deps.store_health,
            outbox_waker: messaging.outbox_waker(),
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

    /// The HTTP router, for tests that call it without a socket.
    pub fn router(&self) -> axum::Router {
        self.router.clone()
    }

    /// Serves until `shutdown` resolves, lets requests in progress finish, stops the consumer after the
    /// message in hand, publishes what the outbox still holds (at most 5 s), then closes the publisher.
    ///
    /// # Errors
    /// The server's I/O error.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(addr = %self.local_addr, service = "event-service", "http server listening");
        let served = myevents_runtime::http::serve(
            self.listener,
            self.router,
            shutdown,
            self.draining,
            &self.server,
        )
        .await;
        self.messaging.shutdown().await;
        if let Some(metrics) = self.metrics {
            metrics.stop().await;
        }
        tracing::info!(service = "event-service", "stopped");
        Ok(served?)
    }
}
