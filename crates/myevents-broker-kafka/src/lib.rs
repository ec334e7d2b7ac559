//! # myevents-broker-kafka
//!
//! The Apache Kafka adapter of the MyEvents broker port ([`myevents_broker::EventPublisher`] and
//! [`myevents_broker::EventSubscriber`]) on `rdkafka`. It is a crate of its own so that a RabbitMQ-only
//! build never compiles librdkafka.
//!
//! Wire format (compatible with the reference MyEvents): one topic (default `events`); each record's
//! value is the JSON envelope `{"eventName": "<name>", "payload": {...}}`. Fixed where the reference was
//! wrong: every record has a **key** (the id of the entity it is about), so messages about one event
//! stay in order on one partition; the message id, type and time also travel as record headers with
//! the CloudEvents Kafka binding's names (`ce_id`, `ce_type`, `ce_time`, `ce_source`, `ce_specversion`;
//! <https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/bindings/kafka-protocol-binding.md>);
//! other headers go as they are.
//!
//! Producer: idempotent, `acks=all`; a publish returns after the delivery report. Consumers join one
//! consumer group per [`Subscription`] (replicas share partitions; a restart resumes from the committed
//! offset, a new group starts at the earliest offset) and commit a message's offset only after it was
//! handled (at least once; asynchronously while running, synchronously at shutdown). A message that cannot be decoded or keeps failing is produced to the
//! dead-letter topic (default `<topic>.dlq`) with `x-dead-letter-reason` and `x-dead-letter-source`
//! headers, then committed; consumption goes on.
//!
//! TLS: with [`KafkaConfig::tls`] every connection speaks `security.protocol=ssl` (librdkafka built
//! with OpenSSL), verifying the brokers' certificates and host names; SASL is not built in.
//!
//! ```no_run
//! use std::sync::Arc;
//! use myevents_broker::EventPublisher;
//! use myevents_broker_kafka::{KafkaBroker, KafkaConfig};
//!
//! # fn demo() -> Result<(), myevents_broker::BrokerError> {
//! let broker = KafkaBroker::new(KafkaConfig::new(vec!["localhost:9092".into()]))?;
//! let publisher: Arc<dyn EventPublisher> = Arc::new(broker);
//! # Ok(())
//! # }
//! ```

use myevents_broker::Cause;
pub use myevents_broker::config::KafkaTls;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use myevents_broker::adapter::{ConsumerSignals, Outcome, mark_dead_letter, process};
use myevents_broker::{
    BrokerError, Consumer, DEAD_LETTER_SOURCE_HEADER, EventPublisher, EventSubscriber, Message,
    MessageHandler, RetryPolicy, Subscription,
};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer as _, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Headers, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tokio::sync::OnceCell;

/// Header that marks a payload carried as a JSON string because it was not JSON itself.
pub const PAYLOAD_ENCODING_HEADER: &str = "x-payload-encoding";

const CE_ID: &str = "ce_id";
const CE_TYPE: &str = "ce_type";
const CE_TIME: &str = "ce_time";
const CE_SOURCE: &str = "ce_source";
const CE_SPECVERSION: &str = "ce_specversion";
const CONTENT_TYPE: &str = "content-type";

/// Settings of the Kafka adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port` each (the reference's `KAFKA_BROKER_URLS`).
    pub brokers: Vec<String>,
    /// The topic all events go through (default `events`).
    pub topic: String,
    /// Where failed messages go (default `<topic>.dlq`).
    pub dead_letter_topic: String,
    /// Partitions of the topics this adapter creates (default 3).
    pub partitions: i32,
    /// Replication factor of the topics this adapter creates (default 1, for one broker); at
    /// start-up a topic found with fewer replicas is reported (see [`KafkaBroker::under_replicated`]).
    pub replication: i32,
    /// `min.insync.replicas` of the topics this adapter creates (default 1): with the producer's
    /// `acks=all`, a publish is confirmed once this many replicas hold it.
    pub min_insync_replicas: i32,
    /// How long a publish may wait for its delivery report (default 10 s).
    pub publish_timeout: Duration,
    /// Consumer group session time-out: how soon a vanished member's partitions move (default 10 s).
    pub session_timeout: Duration,
    /// Retry of transient handler failures before dead-lettering.
    pub retry: RetryPolicy,
    /// `client.id` of our producers and consumers.
    pub client_id: String,
    /// TLS to the brokers (`security.protocol=ssl`); `None` (the default): plaintext.
    pub tls: Option<KafkaTls>,
}

impl KafkaConfig {
    /// Defaults for `brokers`: topic `events`, dead letters to `events.dlq`, 3 partitions.
    pub fn new(brokers: Vec<String>) -> Self {
        Self {
            brokers,
            topic: String::new(),
            dead_letter_topic: String::new(),
            partitions: myevents_broker::config::DEFAULT_PARTITIONS,
            replication: 1,
            min_insync_replicas: 1,
            publish_timeout: Duration::from_secs(10),
            session_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            client_id: "myevents".to_owned(),
            tls: None,
        }
        .with_topic(myevents_broker::config::DEFAULT_TOPIC)
    }

    /// Sets the topic and the dead-letter topic `<topic>.dlq`.
    #[must_use]
    pub fn with_topic(mut self, topic: impl Into<String>) -> Self {
        self.topic = topic.into();
        self.dead_letter_topic = format!("{}.dlq", self.topic);
        self
    }

    fn client(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.brokers.join(","))
            .set("client.id", &self.client_id);
        if let Some(tls) = &self.tls {
            // librdkafka verifies the broker's certificate and host name by default
            // (`enable.ssl.certificate.verification`, `ssl.endpoint.identification.algorithm=https`).
            config.set("security.protocol", "ssl");
            if let Some(ca_file) = &tls.ca_file {
                config.set("ssl.ca.location", ca_file.display().to_string());
            }
        }
        config
    }
}

fn broker_error(error: &KafkaError) -> BrokerError {
    BrokerError::Unavailable(Cause::new(error.clone()))
}

/// The record value of the reference: `{"eventName": "...", "payload": {...}}`.
#[derive(Serialize)]
struct EnvelopeOut<'a> {
    #[serde(rename = "eventName")]
    event_name: &'a str,
    payload: &'a RawValue,
}

#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    #[serde(rename = "eventName")]
    event_name: String,
    #[serde(borrow)]
    payload: &'a RawValue,
}

/// The record value and whether the payload had to be carried as a JSON string.
fn encode_value(message: &Message) -> Result<(Vec<u8>, bool), BrokerError> {
    let encode = |payload: &RawValue| {
        serde_json::to_vec(&EnvelopeOut {
            event_name: &message.name,
            payload,
        })
        .map_err(|e| BrokerError::Unexpected(Cause::new(e)))
    };
    let as_json = std::str::from_utf8(&message.payload)
        .ok()
        .and_then(|text| serde_json::from_str::<&RawValue>(text).ok());
    match as_json {
        Some(raw) => Ok((encode(raw)?, false)),
        None => {
            let text = serde_json::to_string(&String::from_utf8_lossy(&message.payload))
                .map_err(|e| BrokerError::Unexpected(Cause::new(e)))?;
            let raw =
                RawValue::from_string(text).map_err(|e| BrokerError::Unexpected(Cause::new(e)))?;
            Ok((encode(&raw)?, true))
        }
    }
}

fn record_headers(message: &Message, payload_is_text: bool) -> OwnedHeaders {
    let time = message.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: CE_SPECVERSION,
            value: Some("1.0"),
        })
        .insert(Header {
            key: CE_ID,
            value: Some(message.id.as_str()),
        })
        .insert(Header {
            key: CE_TYPE,
            value: Some(message.name.as_str()),
        })
        .insert(Header {
            key: CE_SOURCE,
            value: Some("myevents"),
        })
        .insert(Header {
            key: CE_TIME,
            value: Some(time.as_str()),
        })
        .insert(Header {
            key: CONTENT_TYPE,
            value: Some("application/json"),
        });
    if payload_is_text {
        headers = headers.insert(Header {
            key: PAYLOAD_ENCODING_HEADER,
            value: Some("text"),
        });
    }
    for (name, value) in &message.headers {
        headers = headers.insert(Header {
            key: name.as_str(),
            value: Some(value.as_str()),
        });
    }
    headers
}

/// Reads a record into a [`Message`]. `Err` carries the reason when the value is not an envelope.
fn decode_record(record: &BorrowedMessage<'_>) -> Result<Message, String> {
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    if let Some(list) = record.headers() {
        for header in list.iter() {
            if let Some(value) = header.value {
                headers.insert(
                    header.key.to_owned(),
                    String::from_utf8_lossy(value).into_owned(),
                );
            }
        }
    }
    let value = record.payload().unwrap_or_default();
    let envelope: EnvelopeIn<'_> = serde_json::from_slice(value)
        .map_err(|e| format!("the record value is not an eventName/payload envelope: {e}"))?;
    let payload = if headers.remove(PAYLOAD_ENCODING_HEADER).as_deref() == Some("text") {
        serde_json::from_str::<String>(envelope.payload.get())
            .map_err(|e| format!("a text payload is not a JSON string: {e}"))?
            .into_bytes()
    } else {
        envelope.payload.get().as_bytes().to_vec()
    };
    // A reference producer sends no id: the record's position is unique and stable across redeliveries.
    let id = headers.remove(CE_ID).unwrap_or_else(|| {
        format!(
            "{}-{}-{}",
            record.topic(),
            record.partition(),
            record.offset()
        )
    });
    let timestamp = headers
        .remove(CE_TIME)
        .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
        .map(|t| t.with_timezone(&Utc))
        .or_else(|| {
            record
                .timestamp()
                .to_millis()
                .and_then(DateTime::from_timestamp_millis)
        })
        .unwrap_or_else(Utc::now);
    let name = headers.remove(CE_TYPE).unwrap_or(envelope.event_name);
    for name in [CE_SOURCE, CE_SPECVERSION, CONTENT_TYPE] {
        headers.remove(name);
    }
    Ok(Message {
        id,
        name,
        key: record
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        timestamp,
        payload,
        headers,
    })
}

/// The Kafka publisher and subscriber. Cloning shares the producer.
#[derive(Clone)]
pub struct KafkaBroker {
    config: Arc<KafkaConfig>,
    producer: FutureProducer,
    topics: Arc<OnceCell<()>>,
}

impl std::fmt::Debug for KafkaBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaBroker")
            .field("topic", &self.config.topic)
            .finish_non_exhaustive()
    }
}

impl KafkaBroker {
    /// An adapter for `config`. Connects lazily.
    ///
    /// # Errors
    /// [`BrokerError::Unexpected`] when librdkafka refuses the configuration.
    pub fn new(config: KafkaConfig) -> Result<Self, BrokerError> {
        let timeout_ms = config.publish_timeout.as_millis().to_string();
        let producer: FutureProducer = config
            .client()
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("message.timeout.ms", &timeout_ms)
            .create()
            .map_err(|e| BrokerError::Unexpected(Cause::context("Kafka producer", e)))?;
        Ok(Self {
            config: Arc::new(config),
            producer,
            topics: Arc::default(),
        })
    }

    /// Creates the topic and the dead-letter topic when missing (once per adapter).
    async fn ensure_topics(&self) -> Result<(), BrokerError> {
        self.topics
            .get_or_try_init(|| async {
                let admin: AdminClient<DefaultClientContext> =
                    self.config.client().create().map_err(|e| {
                        BrokerError::Unexpected(Cause::context("Kafka admin client", e))
                    })?;
                let replication = || TopicReplication::Fixed(self.config.replication);
                let min_insync = self.config.min_insync_replicas.to_string();
                let topics = [
                    NewTopic::new(&self.config.topic, self.config.partitions, replication())
                        .set("min.insync.replicas", &min_insync),
                    NewTopic::new(&self.config.dead_letter_topic, 1, replication())
                        .set("min.insync.replicas", &min_insync),
                ];
                // Both time-outs: the broker's for the creation, ours for an answer at all
                // (librdkafka's default waits `socket.timeout.ms`, 60 s).
                let options = AdminOptions::new()
                    .operation_timeout(Some(self.config.publish_timeout))
                    .request_timeout(Some(self.config.publish_timeout));
                let results = admin
                    .create_topics(&topics, &options)
                    .await
                    .map_err(|e| broker_error(&e))?;
                for result in results {
                    match result {
                        Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                        Err((topic, code)) => {
                            return Err(BrokerError::Unavailable(Cause::msg(format!(
                                "creating topic {topic}: {code}"
                            ))));
                        }
                    }
                }
                self.warn_when_under_replicated().await;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    /// Warns, once at start-up, about each topic found with fewer replicas than asked.
    async fn warn_when_under_replicated(&self) {
        match self.under_replicated().await {
            Ok(found) => {
                for (topic, replicas) in found {
                    tracing::warn!(%topic, replicas, asked = self.config.replication,
                        "the topic has fewer replicas than KAFKA_REPLICATION_FACTOR asks: what \
                         its brokers hold is lost with them; raise its replication factor \
                         (kafka-reassign-partitions) or lower the setting");
                }
            }
            Err(error) => tracing::warn!(%error, "could not read the topics' replication"),
        }
    }

    /// The topic and the dead-letter topic when they have fewer replicas than
    /// [`KafkaConfig::replication`] asks: each with its fewest replicas of any partition. (A
    /// topic created elsewhere, or before the setting was raised, keeps its replication.)
    ///
    /// # Errors
    /// [`BrokerError::Unavailable`] when the brokers do not answer within the publish time-out.
    pub async fn under_replicated(&self) -> Result<Vec<(String, usize)>, BrokerError> {
        let producer = self.producer.clone();
        let topics = [
            self.config.topic.clone(),
            self.config.dead_letter_topic.clone(),
        ];
        let timeout = self.config.publish_timeout;
        let asked = usize::try_from(self.config.replication).unwrap_or(0);
        // librdkafka's metadata call blocks its thread until the answer.
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for topic in topics {
                let metadata = producer
                    .client()
                    .fetch_metadata(Some(&topic), timeout)
                    .map_err(|e| broker_error(&e))?;
                let fewest = metadata
                    .topics()
                    .iter()
                    .flat_map(|t| t.partitions())
                    .map(|p| p.replicas().len())
                    .min();
                if let Some(replicas) = fewest.filter(|&replicas| replicas < asked) {
                    found.push((topic, replicas));
                }
            }
            Ok(found)
        })
        .await
        .map_err(|e| BrokerError::Unexpected(Cause::context("reading the topics' metadata", e)))?
    }

    async fn produce(
        &self,
        topic: &str,
        message: &Message,
        extra: &[(&str, &str)],
    ) -> Result<(), BrokerError> {
        let (value, payload_is_text) = encode_value(message)?;
        let mut headers = record_headers(message, payload_is_text);
        for (key, value) in extra {
            headers = headers.insert(Header {
                key,
                value: Some(*value),
            });
        }
        let record = FutureRecord::to(topic)
            .key(message.key.as_bytes())
            .payload(&value)
            .headers(headers);
        self.producer
            .send(record, self.config.publish_timeout)
            .await
            .map(|_| ())
            .map_err(|(error, _)| broker_error(&error))
    }
}

#[async_trait]
impl EventPublisher for KafkaBroker {
    async fn publish(&self, message: &Message) -> Result<(), BrokerError> {
        self.ensure_topics().await?;
        self.produce(&self.config.topic, message, &[]).await
    }

    /// Queues every message in the producer at once (each is queued in order on its future's first
    /// poll, and the idempotent producer keeps that order per partition), then awaits all their
    /// delivery reports.
    async fn publish_batch(&self, messages: &[Message]) -> Vec<Result<(), BrokerError>> {
        if let Err(error) = self.ensure_topics().await {
            return vec![Err(error); messages.len()];
        }
        futures_util::future::join_all(
            messages
                .iter()
                .map(|message| self.produce(&self.config.topic, message, &[])),
        )
        .await
    }

    async fn close(&self) -> Result<(), BrokerError> {
        self.producer
            .flush(self.config.publish_timeout)
            .map_err(|e| broker_error(&e))
    }
}

/// Tracks whether the consumer has partitions assigned (for readiness and tests).
struct AssignmentContext {
    attached: Arc<AtomicBool>,
}

impl ClientContext for AssignmentContext {}

impl ConsumerContext for AssignmentContext {
    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(partitions) => self
                .attached
                .store(partitions.count() > 0, Ordering::Relaxed),
            Rebalance::Revoke(_) => self.attached.store(false, Ordering::Relaxed),
            Rebalance::Error(error) => tracing::warn!(%error, "Kafka rebalance failed"),
        }
    }
}

/// What a consumer reads: a subscription's events from the topic, or (for `sub.dead_letters()`) its
/// dead letters from the dead-letter topic.
struct Reading {
    topic: String,
    /// Event names to handle; others are committed and skipped. `None`: dead letters of `source`.
    names: Option<Vec<String>>,
    source: String,
    /// Whether failed records go to the dead-letter topic (the subscription's `dead_letter`).
    dead_letter: bool,
}

impl Reading {
    fn of(config: &KafkaConfig, subscription: &Subscription) -> Self {
        if subscription.dead_letter || !subscription.event_names.is_empty() {
            Self {
                topic: config.topic.clone(),
                names: Some(subscription.event_names.clone()),
                source: subscription.name.clone(),
                dead_letter: subscription.dead_letter,
            }
        } else {
            Self {
                topic: config.dead_letter_topic.clone(),
                names: None,
                source: subscription
                    .name
                    .strip_suffix(".dlq")
                    .unwrap_or(&subscription.name)
                    .to_owned(),
                dead_letter: subscription.dead_letter,
            }
        }
    }

    fn wants(&self, message: &Message) -> bool {
        match &self.names {
            Some(names) => names.contains(&message.name),
            None => message.headers.get(DEAD_LETTER_SOURCE_HEADER) == Some(&self.source),
        }
    }
}

#[async_trait]
impl EventSubscriber for KafkaBroker {
    async fn declare(&self, _subscription: &Subscription) -> Result<(), BrokerError> {
        // A new consumer group starts at the earliest offset, so the topic keeps everything for it.
        self.ensure_topics().await
    }

    async fn subscribe(
        &self,
        subscription: &Subscription,
        handler: Arc<dyn MessageHandler>,
    ) -> Result<Consumer, BrokerError> {
        let attached = Arc::new(AtomicBool::new(false));
        let (broker, subscription) = (self.clone(), subscription.clone());
        let member_attached = Arc::clone(&attached);
        // Each run of the loop makes sure the topics exist (so that a broker that cannot be reached
        // or trusted at start-up delays consumption, not the service: it starts unready and the
        // run is retried), then is a new group member, so that a restarted loop resumes from the
        // committed offset (the record it could not settle comes again), not from the position the
        // ended member had fetched to.
        Ok(Consumer::spawn(
            &subscription.name.clone(),
            attached,
            move |signals| {
                let (broker, handler) = (broker.clone(), Arc::clone(&handler));
                let (subscription, attached) = (subscription.clone(), Arc::clone(&member_attached));
                async move {
                    if let Err(error) = broker.ensure_topics().await {
                        tracing::error!(%error, "the Kafka topics cannot be made sure of");
                        return;
                    }
                    let reading = Reading::of(&broker.config, &subscription);
                    match broker.member(&subscription, &attached) {
                        Ok(consumer) => consume(broker, consumer, reading, handler, signals).await,
                        Err(error) => tracing::error!(%error, "creating a Kafka consumer failed"),
                    }
                }
            },
        ))
    }
}

impl KafkaBroker {
    /// A new member of `subscription`'s consumer group, subscribed to its topic; `attached` follows
    /// its partition assignment.
    fn member(
        &self,
        subscription: &Subscription,
        attached: &Arc<AtomicBool>,
    ) -> Result<StreamConsumer<AssignmentContext>, BrokerError> {
        let reading = Reading::of(&self.config, subscription);
        let consumer: StreamConsumer<AssignmentContext> = self
            .config
            .client()
            .set("group.id", &subscription.name)
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.config.session_timeout.as_millis().to_string(),
            )
            .create_with_context(AssignmentContext {
                attached: Arc::clone(attached),
            })
            .map_err(|e| BrokerError::Unexpected(Cause::context("Kafka consumer", e)))?;
        consumer
            .subscribe(&[reading.topic.as_str()])
            .map_err(|e| broker_error(&e))?;
        Ok(consumer)
    }
}

async fn consume(
    broker: KafkaBroker,
    consumer: StreamConsumer<AssignmentContext>,
    reading: Reading,
    handler: Arc<dyn MessageHandler>,
    signals: ConsumerSignals,
) {
    loop {
        let record = tokio::select! {
            biased;
            () = signals.stopping() => break,
            record = consumer.recv() => record,
        };
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                tracing::warn!(%error, topic = %reading.topic, "Kafka consumer error");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(500)) => continue,
                    () = signals.stopping() => break,
                }
            }
        };
        let outcome = match decode_record(&record) {
            Err(reason) => Some(reason),
            Ok(message) if !reading.wants(&message) => None,
            Ok(message) => {
                let processing = process(
                    handler.as_ref(),
                    &message,
                    broker.config.retry,
                    signals.metrics(),
                );
                let outcome = tokio::select! {
                    biased;
                    // A crash: no commit, the group delivers the record again.
                    () = signals.killed() => break,
                    outcome = processing => outcome,
                };
                match outcome {
                    Outcome::Ack => None,
                    Outcome::DeadLetter(reason) => Some(reason),
                }
            }
        };
        if let Some(reason) = outcome {
            if reading.dead_letter {
                if let Err(error) = dead_letter_record(&broker, &record, &reading, &reason).await {
                    // Not committed: the record comes again after a restart; nothing is lost.
                    tracing::error!(%error, "dead-lettering failed; the record stays uncommitted");
                    break;
                }
            } else {
                tracing::error!(%reason, "a dead letter could not be handled; left uncommitted");
                break;
            }
        }
        // Asynchronous: the offset is committed only after the record was handled, so a lost commit
        // means a redelivery (handlers are idempotent), never a skip. The final commit is synchronous.
        if let Err(error) = consumer.commit_message(&record, CommitMode::Async) {
            tracing::warn!(%error, "committing an offset failed; the record may come again");
        }
    }
    if !signals.is_killed() {
        // The position is right after the last handled record: the loop stops before the next recv.
        if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
            tracing::warn!(%error, "the final offset commit failed; records may come again");
        }
    }
}

async fn dead_letter_record(
    broker: &KafkaBroker,
    record: &BorrowedMessage<'_>,
    reading: &Reading,
    reason: &str,
) -> Result<(), BrokerError> {
    let mut message = decode_record(record).unwrap_or_else(|_| Message {
        id: format!(
            "{}-{}-{}",
            record.topic(),
            record.partition(),
            record.offset()
        ),
        name: String::new(),
        key: record
            .key()
            .map(|k| String::from_utf8_lossy(k).into_owned())
            .unwrap_or_default(),
        timestamp: Utc::now(),
        payload: record.payload().unwrap_or_default().to_vec(),
        headers: BTreeMap::new(),
    });
    let source = Subscription::new(reading.source.clone(), &[]);
    mark_dead_letter(&source, &mut message, reason.to_owned());
    broker
        .produce(&broker.config.dead_letter_topic, &message, &[])
        .await
}
