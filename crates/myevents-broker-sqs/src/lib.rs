//! # myevents-broker-sqs
//!
//! The Amazon SNS + SQS adapter of the MyEvents broker port ([`myevents_broker::EventPublisher`] and
//! [`myevents_broker::EventSubscriber`]) on the official AWS SDK for Rust. It is a crate of its own so
//! that a build without it never compiles the SDK.
//!
//! The AWS way to hand one event to several subscribers: every message is published to one SNS
//! **FIFO topic** (`<topic>.fifo`); each [`Subscription`] is an SQS **FIFO queue** (`<name>.fifo`)
//! subscribed to the topic with raw message delivery and a filter policy on the `x-event-name`
//! message attribute, so that it receives exactly the event names it lists. FIFO, because the port
//! promises that messages with one key keep their order: the key is the message group id, and SQS
//! hands out a group's messages one after the other. The message id is the deduplication id, so a
//! message published twice within five minutes (an outbox relay retrying) is delivered once.
//!
//! Wire format (<https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html>): the body is
//! the payload as text (base64 with attribute `x-payload-encoding: base64` when it is not valid XML
//! text); the event name, message id and time travel as the message attributes `x-event-name`,
//! `x-message-id` and `x-timestamp` (RFC 3339), every header as an attribute of its own name
//! (`traceparent`, `x-dead-letter-reason`, …). SNS and SQS carry at most 10 attributes, so a message
//! has room for 7 headers (6 with a base64 body); a message with more is refused, never cut.
//!
//! Consuming: long polling (up to 10 messages per receive, `wait_time` seconds), each message handled
//! in order with the port's retries ([`myevents_broker::adapter::process`]) while its visibility
//! time-out is extended every third of it, then deleted in one batch per receive. A message that is
//! poison or keeps failing is sent to the subscription's dead-letter queue (`<name>-dlq.fifo`) with
//! `x-dead-letter-reason` and `x-dead-letter-source`, then deleted. Each queue's redrive policy
//! also moves a message there once it was received `max_receive_count` times without being deleted
//! (one that crashes its consumer every time); such a message carries no reason attribute. A consumer
//! stopped gracefully hands the messages it received but did not start back at once (visibility 0);
//! a crashed one leaves them to reappear after the visibility time-out.
//!
//! Region, credentials and endpoint come from the SDK's default chain (`AWS_REGION`, the
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` pair, web identity for Kubernetes service accounts,
//! the instance profile; `AWS_ENDPOINT_URL` for a local server), or from [`SqsConfig::endpoint`] and
//! [`SqsConfig::region`]. HTTPS by rustls with ring, like the rest of the tree.
//!
//! ```no_run
//! use std::sync::Arc;
//! use myevents_broker::EventPublisher;
//! use myevents_broker_sqs::{SqsBroker, SqsConfig};
//!
//! let broker = SqsBroker::new(SqsConfig::new("events"));
//! let publisher: Arc<dyn EventPublisher> = Arc::new(broker);
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use myevents_broker::{
    BrokerError, Cause, Consumer, EventPublisher, EventSubscriber, Message, MessageHandler,
    RetryPolicy, Subscription,
};
use tokio::sync::{Mutex, OnceCell};

mod consume;
mod topology;
mod wire;

pub use myevents_broker::config::SqsTopology;

/// The most messages SNS takes in one `PublishBatch`.
const BATCH: usize = 10;

/// Settings of the SNS + SQS adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsConfig {
    /// The SNS topic's name without its `.fifo` suffix (`SQS_TOPIC`, default `events`).
    pub topic: String,
    /// Whether the adapter creates the topic, queues and subscriptions it misses, or only checks that
    /// they exist (when the deployment owns them).
    pub topology_mode: SqsTopology,
    /// Every subscription of the system: created (or checked) before the first publish, since SNS
    /// drops a message no queue is subscribed to.
    pub topology: Vec<Subscription>,
    /// How long a received message stays invisible to other consumers (the queues' visibility
    /// time-out, whole seconds, 1 to 43,200); extended every third of it while a handler runs.
    pub visibility_timeout: Duration,
    /// Long polling: how long a receive waits for a message (whole seconds, 0 to 20).
    pub wait_time: Duration,
    /// Receives after which SQS itself moves a message that was never deleted to the dead-letter
    /// queue (the redrive policy's `maxReceiveCount`, 1 to 1,000).
    pub max_receive_count: u32,
    /// Retries of a failing handler before dead-lettering.
    pub retry: RetryPolicy,
    /// An endpoint for both services instead of AWS's (a local server); `None`: the SDK's own
    /// (`AWS_ENDPOINT_URL` or the region's).
    pub endpoint: Option<String>,
    /// The region; `None`: the SDK's default chain (`AWS_REGION`, the profile, the instance's).
    pub region: Option<String>,
}

impl SqsConfig {
    /// Topic `topic`, created when missing; visibility 30 s, long polling 20 s, 10 receives before
    /// SQS dead-letters a message by itself; the default retry policy; region and endpoint from the
    /// SDK's chain.
    pub fn new(topic: impl Into<String>) -> Self {
        Self {
            topic: topic.into(),
            topology_mode: SqsTopology::Create,
            topology: Vec::new(),
            visibility_timeout: Duration::from_secs(30),
            wait_time: Duration::from_secs(20),
            max_receive_count: 10,
            retry: RetryPolicy::default(),
            endpoint: None,
            region: None,
        }
    }
}

/// The AWS clients, made once from the SDK's configuration.
#[derive(Debug, Clone)]
struct Clients {
    sns: aws_sdk_sns::Client,
    sqs: aws_sdk_sqs::Client,
}

/// The SNS + SQS adapter; clones share the clients and what they learnt of the topology.
#[derive(Clone)]
pub struct SqsBroker {
    inner: Arc<Inner>,
}

struct Inner {
    config: SqsConfig,
    clients: OnceCell<Clients>,
    // What the adapter learnt of the topology, forgotten together when AWS says a part of it is
    // gone ([`SqsBroker::forget_topology`]).
    /// The topic's ARN, once created or found.
    topic_arn: Mutex<Option<String>>,
    /// Whether [`SqsConfig::topology`] was declared.
    topology: Mutex<bool>,
    /// Queue URLs by subscription name, once declared.
    queues: Mutex<HashMap<String, topology::Queues>>,
}

impl std::fmt::Debug for SqsBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqsBroker")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl SqsBroker {
    /// An adapter for `config`. Nothing is contacted yet: the SDK's configuration is loaded and the
    /// topology declared on first use, so that an unreachable AWS delays consumption, not the start.
    pub fn new(config: SqsConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                clients: OnceCell::new(),
                topic_arn: Mutex::new(None),
                topology: Mutex::new(false),
                queues: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &SqsConfig {
        &self.inner.config
    }

    /// The clients, made on first use from the SDK's default chain and the overrides of the
    /// settings.
    ///
    /// # Errors
    /// [`BrokerError::Misconfigured`] when no region is configured anywhere.
    async fn clients(&self) -> Result<&Clients, BrokerError> {
        self.inner
            .clients
            .get_or_try_init(|| async {
                let config = &self.inner.config;
                let shared = myevents_aws::sdk_config(&myevents_aws::AwsSettings {
                    endpoint: config.endpoint.clone(),
                    region: config.region.clone(),
                    // Above the longest long poll (20 s).
                    operation_timeout: Duration::from_secs(30),
                })
                .await
                .map_err(BrokerError::Misconfigured)?;
                Ok(Clients {
                    sns: aws_sdk_sns::Client::new(&shared),
                    sqs: aws_sdk_sqs::Client::new(&shared),
                })
            })
            .await
    }

    /// Declares [`SqsConfig::topology`] on the first publish (and on the first after it was
    /// forgotten).
    async fn ensure_topology(&self) -> Result<(), BrokerError> {
        let mut declared = self.inner.topology.lock().await;
        if !*declared {
            for subscription in &self.inner.config.topology {
                self.queues(subscription).await?;
            }
            *declared = true;
        }
        Ok(())
    }

    /// Forgets the topic's ARN, the queues' URLs and that the topology was declared, after AWS said
    /// a part of it is gone (deleted, or a local server that keeps nothing restarted): the next
    /// publish and the next consume run declare it again (in check mode: name what is missing).
    pub(crate) async fn forget_topology(&self) {
        *self.inner.topology.lock().await = false;
        *self.inner.topic_arn.lock().await = None;
        self.inner.queues.lock().await.clear();
        tracing::warn!(topic = %self.inner.config.topic,
            "part of the SNS + SQS topology is gone: it is declared again on next use");
    }

    /// Publishes up to [`BATCH`] messages in one `PublishBatch`; one result per message.
    async fn publish_chunk(&self, messages: &[Message]) -> Vec<Result<(), BrokerError>> {
        let prepared = async {
            let clients = self.clients().await?;
            let topic_arn = self.topic_arn().await?;
            Ok::<_, BrokerError>((clients, topic_arn))
        }
        .await;
        let (clients, topic_arn) = match prepared {
            Ok(prepared) => prepared,
            Err(error) => return vec![Err(error); messages.len()],
        };
        let mut entries = Vec::with_capacity(messages.len());
        let mut results: Vec<Result<(), BrokerError>> = vec![Ok(()); messages.len()];
        for (index, message) in messages.iter().enumerate() {
            match wire::publish_entry(index, message) {
                Ok(entry) => entries.push(entry),
                Err(error) => results[index] = Err(error),
            }
        }
        if entries.is_empty() {
            return results;
        }
        let answer = clients
            .sns
            .publish_batch()
            .topic_arn(topic_arn)
            .set_publish_batch_request_entries(Some(entries))
            .send()
            .await;
        match answer {
            Err(error) => {
                if topology::is_gone(&error) {
                    self.forget_topology().await;
                }
                let error = topology::aws_error("publishing", &error);
                for result in results.iter_mut().filter(|r| r.is_ok()) {
                    *result = Err(error.clone());
                }
            }
            Ok(output) => {
                for failed in output.failed() {
                    if let Ok(index) = failed.id().parse::<usize>() {
                        let text = format!(
                            "SNS refused the message: {} {}",
                            failed.code(),
                            failed.message().unwrap_or_default()
                        );
                        results[index] = Err(if failed.sender_fault() {
                            BrokerError::Refused(Cause::msg(text))
                        } else {
                            BrokerError::Unavailable(Cause::msg(text))
                        });
                    }
                }
            }
        }
        results
    }
}

#[async_trait]
impl EventPublisher for SqsBroker {
    async fn publish(&self, message: &Message) -> Result<(), BrokerError> {
        self.ensure_topology().await?;
        let (clients, topic_arn) = (self.clients().await?, self.topic_arn().await?);
        let request = wire::publish_request(&clients.sns, &topic_arn, message)?;
        // The SDK retries a lost connection or a throttled call (standard retry mode, 3 attempts).
        if let Err(error) = request.send().await {
            if topology::is_gone(&error) {
                self.forget_topology().await;
            }
            return Err(topology::aws_error("publishing", &error));
        }
        Ok(())
    }

    async fn publish_batch(&self, messages: &[Message]) -> Vec<Result<(), BrokerError>> {
        if let Err(error) = self.ensure_topology().await {
            return vec![Err(error); messages.len()];
        }
        let mut results = Vec::with_capacity(messages.len());
        let mut failed: Option<BrokerError> = None;
        for chunk in messages.chunks(BATCH) {
            // After a failed chunk the rest stay unpublished, which keeps their order for the caller.
            if let Some(error) = &failed {
                results.extend(chunk.iter().map(|_| Err(error.clone())));
                continue;
            }
            let chunk_results = self.publish_chunk(chunk).await;
            failed = chunk_results.iter().find_map(|r| r.clone().err());
            results.extend(chunk_results);
        }
        results
    }
}

#[async_trait]
impl EventSubscriber for SqsBroker {
    async fn declare(&self, subscription: &Subscription) -> Result<(), BrokerError> {
        self.queues(subscription).await.map(|_| ())
    }

    async fn subscribe(
        &self,
        subscription: &Subscription,
        handler: Arc<dyn MessageHandler>,
    ) -> Result<Consumer, BrokerError> {
        Ok(consume::spawn(self.clone(), subscription.clone(), handler))
    }
}
