//! The one factory that turns a [`BrokerConfig`] into a publisher and a subscriber. It lives here,
//! not beside the port in `myevents-broker`, because the Kafka adapter has its own crate (its build is
//! heavy) that depends on the port.

use std::sync::Arc;

use myevents_broker::memory::InMemoryBroker;
use myevents_broker::{EventPublisher, EventSubscriber, Subscription};
use myevents_domain::messages::SUBSCRIBERS;

use myevents_broker::config::BrokerConfig;

/// A broker's two ports.
#[derive(Clone)]
pub struct Broker {
    /// Publishes domain events.
    pub publisher: Arc<dyn EventPublisher>,
    /// Consumes domain events.
    pub subscriber: Arc<dyn EventSubscriber>,
}

impl Broker {
    /// Both ports of one adapter (its clones share its connections).
    pub fn new<A>(adapter: A) -> Self
    where
        A: EventPublisher + EventSubscriber + Clone + 'static,
    {
        Self {
            publisher: Arc::new(adapter.clone()),
            subscriber: Arc::new(adapter),
        }
    }

    /// Both ports of one in-process broker.
    pub fn in_memory(broker: &InMemoryBroker) -> Self {
        Self::new(broker.clone())
    }
}

/// Builds the adapter `config` names. Connections open lazily, so a broker that is down at start-up
/// does not fail this call. `topology` is every subscription of the system (see [`topology`]): the
/// RabbitMQ and SNS + SQS adapters declare it before they publish, so that no message is published
/// before its queue exists (both drop a message no queue takes); a Kafka topic keeps every message
/// for a consumer group that has not run yet, and the in-memory broker lives in one process.
///
/// # Errors
/// When the configured broker kind was not compiled into this binary (cargo features `rabbitmq`,
/// `kafka`, `sqs`).
// Only the RabbitMQ and SNS + SQS adapters read `topology`.
#[cfg_attr(
    not(any(feature = "rabbitmq", feature = "sqs")),
    allow(unused_variables)
)]
pub fn build(config: &BrokerConfig, topology: &[Subscription]) -> anyhow::Result<Broker> {
    match config {
        BrokerConfig::Memory => Ok(Broker::in_memory(&InMemoryBroker::default())),
        #[cfg(feature = "rabbitmq")]
        BrokerConfig::RabbitMq {
            url,
            exchange,
            queue_expires,
            queue_type,
            ca_file,
        } => {
            use anyhow::Context;
            use myevents_broker::rabbitmq::{RabbitMqBroker, RabbitMqConfig};
            let mut settings = RabbitMqConfig::new(url.clone());
            settings.exchange.clone_from(exchange);
            settings.queue_expires = *queue_expires;
            settings.queue_type = *queue_type;
            settings.topology = topology.to_vec();
            settings.ca_pem = ca_file
                .as_ref()
                .map(|path| {
                    std::fs::read_to_string(path)
                        .with_context(|| format!("AMQP_CA_FILE {}", path.display()))
                })
                .transpose()?;
            Ok(Broker::new(RabbitMqBroker::new(settings)))
        }
        #[cfg(not(feature = "rabbitmq"))]
        BrokerConfig::RabbitMq { .. } => {
            anyhow::bail!(
                "BROKER_KIND=rabbitmq, but this binary was built without the `rabbitmq` feature"
            )
        }
        #[cfg(feature = "kafka")]
        BrokerConfig::Kafka {
            brokers,
            topic,
            partitions,
            replication,
            tls,
        } => {
            use myevents_broker_kafka::{KafkaBroker, KafkaConfig};
            let mut settings = KafkaConfig::new(brokers.clone()).with_topic(topic.clone());
            settings.partitions = *partitions;
            settings.replication = replication.factor;
            settings.min_insync_replicas = replication.min_insync;
            settings.tls.clone_from(tls);
            Ok(Broker::new(KafkaBroker::new(settings)?))
        }
        #[cfg(not(feature = "kafka"))]
        BrokerConfig::Kafka { .. } => {
            anyhow::bail!(
                "BROKER_KIND=kafka, but this binary was built without the `kafka` feature"
            )
        }
        #[cfg(feature = "sqs")]
        BrokerConfig::Sqs {
            topic,
            topology: mode,
            visibility_timeout,
            max_receive_count,
        } => {
            use myevents_broker_sqs::{SqsBroker, SqsConfig};
            let mut settings = SqsConfig::new(topic.clone());
            settings.topology_mode = *mode;
            settings.topology = topology.to_vec();
            settings.visibility_timeout = *visibility_timeout;
            settings.max_receive_count = *max_receive_count;
            Ok(Broker::new(SqsBroker::new(settings)))
        }
        #[cfg(not(feature = "sqs"))]
        BrokerConfig::Sqs { .. } => {
            anyhow::bail!("BROKER_KIND=sqs, but this binary was built without the `sqs` feature")
        }
    }
}

/// The system's message topology: a subscription for every subscriber of
/// [`myevents_domain::messages::SUBSCRIBERS`], its queue (consumer group) named by its variable
/// (`BOOKING_QUEUE`, `EVENTS_QUEUE`) or the reference's default. Every service reads all of them, so
/// that each declares the same queues.
pub fn topology() -> Vec<Subscription> {
    SUBSCRIBERS
        .iter()
        .map(|subscriber| {
            let queue = myevents_platform::config::var(subscriber.queue_variable)
                .unwrap_or_else(|| subscriber.queue.to_owned());
            Subscription::new(queue, subscriber.consumes)
        })
        .collect()
}
