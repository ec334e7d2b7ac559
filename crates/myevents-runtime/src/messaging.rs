//! The messaging side of a service: its consumer, its outbox relay and its publisher, started together
//! and shut down in the right order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use myevents_broker::{Consumer, ConsumerStatus, EventPublisher, MessageHandler, Subscription};
use myevents_store::Outbox;
use tokio::sync::Notify;

use crate::broker::Broker;
use crate::config::RelayConfig;
use crate::outbox::OutboxRelay;

/// How long shutdown lets the relay publish what the outbox still holds.
pub const RELAY_DRAIN: Duration = Duration::from_secs(5);

/// A service's running consumer, outbox relay and publisher.
pub struct Messaging {
    consumer: Consumer,
    sampler: tokio::task::JoinHandle<()>,
    relay: Option<OutboxRelay>,
    waker: Arc<Notify>,
    publisher: Arc<dyn EventPublisher>,
}

impl Messaging {
    /// Declares `subscription` (a broker that is down only delays this: the consumer declares it when
    /// it connects), starts its consumer with `handler`, and starts the relay from `outbox` unless
    /// `relay` says off.
    ///
    /// # Errors
    /// When the consumer cannot be started.
    pub async fn start(
        broker: &Broker,
        subscription: &Subscription,
        handler: Arc<dyn MessageHandler>,
        outbox: Arc<dyn Outbox>,
        relay: RelayConfig,
    ) -> anyhow::Result<Self> {
        if let Err(error) = broker.subscriber.declare(subscription).await {
            tracing::warn!(%error, queue = %subscription.name,
                "broker unreachable at start-up; the consumer keeps retrying");
        }
        let consumer = broker
            .subscriber
            .subscribe(subscription, handler)
            .await
            .with_context(|| format!("starting the consumer of {}", subscription.name))?;
        let relay = relay.enabled.then(|| {
            OutboxRelay::start(outbox, Arc::clone(&broker.publisher), relay.poll_interval)
        });
        if relay.is_none() {
            tracing::warn!("OUTBOX_RELAY=off: stored messages are not published by this process");
        }
        let status = consumer.status();
        let sampler = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticks.tick().await;
                crate::metrics::CONSUMER_ATTACHED.set(i64::from(status.is_attached()));
            }
        });
        Ok(Self {
            sampler,
            consumer,
            waker: relay.as_ref().map_or_else(Arc::default, OutboxRelay::waker),
            relay,
            publisher: Arc::clone(&broker.publisher),
        })
    }

    /// Whether the consumer is attached (for readiness).
    pub fn consumer_status(&self) -> ConsumerStatus {
        self.consumer.status()
    }

    /// Notify it after storing an outbox message, so the relay publishes at once.
    pub fn outbox_waker(&self) -> Arc<Notify> {
        Arc::clone(&self.waker)
    }

    /// Stops the consumer after the message in hand, lets the relay publish what is pending (at most
    /// [`RELAY_DRAIN`]), then flushes and closes the publisher.
    pub async fn shutdown(self) {
        self.sampler.abort();
        self.consumer.shutdown().await;
        if let Some(relay) = self.relay {
            relay.shutdown(RELAY_DRAIN).await;
        }
        if let Err(error) = self.publisher.close().await {
            tracing::error!(%error, "closing the publisher failed");
        }
    }
}
