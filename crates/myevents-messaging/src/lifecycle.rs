//! The messaging side of a service: its consumer, its outbox relay and its publisher, started together
//! and shut down in the right order.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use myevents_broker::{
    BrokerError, Consumer, ConsumerStatus, EventPublisher, MessageHandler, Subscription,
};
use myevents_store::Outbox;

use crate::broker::Broker;
use crate::config::RelayConfig;
use crate::metrics::MessagingMetrics;
use crate::outbox::{OutboxRelay, OutboxWaker};

/// What a service consumes and relays: its subscription and handler, its outbox and the waker its
/// writes notify.
pub struct MessagingParts {
    /// The queue (or consumer group) and the event names bound to it.
    pub subscription: Subscription,
    /// Handles each message of the subscription.
    pub handler: Arc<dyn MessageHandler>,
    /// The messages the service's writes stored, waiting to be published.
    pub outbox: Arc<dyn Outbox>,
    /// Notified by the service after each write that stored a message.
    pub waker: OutboxWaker,
}

/// A service's running consumer, outbox relay and publisher.
pub struct Messaging {
    consumer: Consumer,
    sampler: tokio::task::JoinHandle<()>,
    backlog: tokio::task::JoinHandle<()>,
    relay: Option<OutboxRelay>,
    publisher: Arc<dyn EventPublisher>,
}

/// How long start-up waits for the broker to declare the subscription (5 s) before it goes on and
/// leaves that to the consumer (a broker that cannot be reached, or trusted, can take the client's
/// whole request time-out to say so).
pub(crate) const DECLARE_AT_START: Duration = Duration::from_secs(5);

impl Messaging {
    /// Declares the subscription (a broker that is down only delays this, by at most 5 s: the
    /// consumer declares it when it connects; a broker whose definitions contradict the settings,
    /// e.g. a queue of another type, stops the start), starts its consumer, and starts the relay of the
    /// outbox unless `relay` says off. `service` labels the metrics.
    ///
    /// # Errors
    /// When the broker's definitions contradict the settings, or the consumer cannot be started.
    pub async fn start(
        service: &'static str,
        broker: &Broker,
        parts: MessagingParts,
        relay: RelayConfig,
    ) -> anyhow::Result<Self> {
        let MessagingParts {
            subscription,
            handler,
            outbox,
            waker,
        } = parts;
        let metrics = MessagingMetrics::registered(service);
        match tokio::time::timeout(DECLARE_AT_START, broker.subscriber.declare(&subscription)).await
        {
            Ok(Ok(())) => {}
            // Retrying cannot mend the broker's definitions: the service refuses to start.
            Ok(Err(error @ BrokerError::Misconfigured(_))) => {
                return Err(anyhow::Error::new(error)
                    .context(format!("declaring the subscription {}", subscription.name)));
            }
            Ok(Err(error)) => tracing::warn!(%error, queue = %subscription.name,
                "broker unreachable at start-up; the consumer keeps retrying"),
            Err(_) => tracing::warn!(queue = %subscription.name,
                "broker not answering at start-up; the consumer keeps retrying"),
        }
        let handler = crate::dead_letters::only_for_its_target(&subscription.name, handler);
        let consumer = broker
            .subscriber
            .subscribe(&subscription, handler)
            .await
            .with_context(|| format!("starting the consumer of {}", subscription.name))?;
        let backlog = crate::outbox::watch_backlog(Arc::clone(&outbox), &metrics);
        let relay = relay.enabled.then(|| {
            OutboxRelay::start(
                outbox,
                Arc::clone(&broker.publisher),
                relay,
                waker,
                metrics.clone(),
            )
        });
        if relay.is_none() {
            tracing::warn!("OUTBOX_RELAY=off: stored messages are not published by this process");
        }
        let status = consumer.status();
        let attached = metrics.consumer_attached.with_label_values(&[service]);
        let failing = metrics.consumer_failing.with_label_values(&[service]);
        let sampler = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(Duration::from_secs(1));
            loop {
                ticks.tick().await;
                attached.set(i64::from(status.is_attached()));
                let seconds = status.failing_for().map_or(0, |f| f.as_secs());
                failing.set(i64::try_from(seconds).unwrap_or(i64::MAX));
            }
        });
        Ok(Self {
            sampler,
            backlog,
            consumer,
            relay,
            publisher: Arc::clone(&broker.publisher),
        })
    }

    /// Whether the consumer is attached (for readiness).
    pub fn consumer_status(&self) -> ConsumerStatus {
        self.consumer.status()
    }

    /// Stops within `budget`, in order: the consumer after the message in hand (a message that does
    /// not finish in time is left unacknowledged, so the broker delivers it again), the relay after
    /// publishing what is pending (what it cannot publish in time stays in the outbox), then the
    /// publisher's flush. Each stage gets what the stages before it left of `budget`.
    pub async fn shutdown(self, budget: Duration) {
        let deadline = tokio::time::Instant::now() + budget;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        self.sampler.abort();
        self.backlog.abort();
        self.consumer.shutdown_within(left()).await;
        if let Some(relay) = self.relay {
            relay.shutdown(left()).await;
        }
        match tokio::time::timeout(left(), self.publisher.close()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "closing the publisher failed"),
            Err(_) => tracing::warn!("the publisher did not close within the shutdown budget"),
        }
    }
}
