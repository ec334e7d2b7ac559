//! RabbitMQ adapter (AMQP 0-9-1 through `lapin`).
//!
//! Topology, compatible with the reference MyEvents: one durable `topic` exchange (default `events`),
//! routing key = event name, header `x-event-name` = event name, `content-type: application/json`.
//! Each [`Subscription`] is a durable queue (no arguments, as the reference's `booking` queue) bound to
//! its event names, plus a durable dead-letter queue `<name>.dlq` that failed messages are published to
//! (through the default exchange, with publisher confirms) before the original is acknowledged.
//!
//! Every subscription of the system ([`RabbitMqConfig::topology`]) is declared by the publisher too,
//! before its first publish on each connection: RabbitMQ drops a message no queue is bound for, so a
//! message published before its consumer first ran would otherwise be lost.
//!
//! Messages are published persistent (`delivery-mode 2`) on a confirm-mode channel; [`publish`] returns
//! after the broker's `basic.ack`. The message id travels in `message-id`, the time in `timestamp`
//! (Unix seconds), the partition key in the `x-message-key` header. A lost connection is re-established
//! with exponential backoff by publishers (within the publish time-out) and consumers (until stopped).
//!
//! Source: AMQP 0-9-1 and RabbitMQ's publisher confirms (<https://www.rabbitmq.com/docs/confirms>).
//!
//! [`publish`]: crate::EventPublisher::publish

use crate::Cause;
use crate::config::QueueType;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use futures_util::{FutureExt, StreamExt};
use lapin::Connect as _;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use tokio::sync::Mutex;

use crate::consume::{ConsumerSignals, Outcome, mark_dead_letter, process};
use crate::{
    BrokerError, Consumer, EVENT_NAME_HEADER, EventPublisher, EventSubscriber, Message,
    MessageHandler, RetryPolicy, Subscription,
};

/// Header carrying [`Message::key`].
pub const MESSAGE_KEY_HEADER: &str = "x-message-key";

/// Settings of the RabbitMQ adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RabbitMqConfig {
    /// AMQP URI, e.g. `amqp://guest:guest@localhost:5672/%2f` (the reference's `AMQP_BROKER_URL`),
    /// or several, comma-separated (the nodes of a cluster): a connection tries them in turn, on
    /// connect and on every reconnect, from the one that last answered.
    pub url: String,
    /// The topic exchange all events go through (default `events`).
    pub exchange: String,
    /// Unacknowledged deliveries a consumer may hold (`basic.qos` prefetch count; default 256, well
    /// above the 64 handled deliveries acknowledged together).
    pub prefetch: u16,
    /// How long one publish may take, reconnecting included, before it fails (default 10 s).
    pub publish_timeout: Duration,
    /// Retry of transient handler failures before dead-lettering.
    pub retry: RetryPolicy,
    /// Name shown for our connections in the RabbitMQ management UI.
    pub connection_name: String,
    /// Deletes a subscription's queue after it has had no consumer for this long (`x-expires`,
    /// whole milliseconds). `None` (the default) keeps it forever, as a service's queue must be; set
    /// it for short-lived subscriptions such as tests'. Changing it for an existing queue makes
    /// RabbitMQ refuse the declaration. Never applied to a dead-letter queue: its messages wait for
    /// someone to look at them, however long that takes (an expiring one would drop them unseen).
    pub queue_expires: Option<Duration>,
    /// The type of every queue declared, dead-letter queues included (`x-queue-type`; default
    /// quorum). A queue that exists with another type is [`BrokerError::Misconfigured`].
    pub queue_type: QueueType,
    /// PEM certificates (a private CA's) to trust for an `amqps://` URL, besides the system's roots
    /// (default none).
    pub ca_pem: Option<String>,
    /// Every subscription of the system, its own and its peers' (default none): declared — queue,
    /// dead-letter queue, bindings — on each publishing connection this adapter opens, before its
    /// first publish. RabbitMQ drops a message that no queue is bound for, so without this a message
    /// published before its consumer first ran (or after the broker lost its definitions) would be
    /// confirmed and lost.
    pub topology: Vec<Subscription>,
}

impl RabbitMqConfig {
    /// Defaults for `url`: exchange `events`, prefetch 256, publish time-out 10 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            exchange: crate::config::DEFAULT_EXCHANGE.to_owned(),
            prefetch: 256,
            publish_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            connection_name: "myevents".to_owned(),
            queue_expires: None,
            queue_type: QueueType::default(),
            ca_pem: None,
            topology: Vec::new(),
        }
    }
}

/// The error of a refused declaration of `queue`: when the queue exists with another type than
/// `asked` (the broker's bare `PRECONDITION_FAILED - inequivalent arg 'x-queue-type'`),
/// [`BrokerError::Misconfigured`] naming the queue, both types and the way out; else
/// [`BrokerError::Unexpected`] (a dead-letter queue declared with `x-expires` by an earlier
/// version, say: the broker's text names the argument).
fn declaration_refused(queue: &str, asked: QueueType, error: lapin::Error) -> BrokerError {
    let text = error.to_string();
    if !text.contains("inequivalent arg 'x-queue-type'") {
        return BrokerError::Unexpected(Cause::context(format!("declaring queue {queue}"), error));
    }
    // "... received the value 'quorum' of type 'longstr' but current is none": none is classic.
    let current = text
        .split("but current is ")
        .nth(1)
        .map(|rest| {
            if rest.starts_with("none") {
                "classic"
            } else {
                rest.split('\'').nth(1).unwrap_or("another type")
            }
        })
        .unwrap_or("another type");
    BrokerError::Misconfigured(Cause::msg(format!(
        "queue {queue:?} exists as a {current} queue, but AMQP_QUEUE_TYPE asks for a {asked} queue; \
         set AMQP_QUEUE_TYPE={current} to go on with it, or move its messages to a {asked} queue \
         (docs/messages.md, \"Moving to quorum queues\") and delete it",
        asked = asked.as_str(),
    )))
}

/// The largest frame asked of RabbitMQ when `AMQP_BROKER_URL` sets none (its `frame_max` query
/// parameter), in bytes: 16 KiB. lapin keeps a send and a receive buffer of 32 frames for each
/// connection, so RabbitMQ's default of 128 KiB would hold 8 MiB per connection for messages of
/// under 1 KiB (a larger message is carried in several frames).
const FRAME_MAX: u32 = 16 * 1024;

fn unavailable(error: &lapin::Error) -> BrokerError {
    BrokerError::Unavailable(Cause::new(error.clone()))
}

/// The RabbitMQ publisher and subscriber. Cloning shares the publishing connection.
#[derive(Clone)]
pub struct RabbitMqBroker {
    config: Arc<RabbitMqConfig>,
    /// The publishing connection and its confirm-mode channel, opened on first use and replaced when lost.
    publishing: Arc<Mutex<Option<(Connection, Channel)>>>,
    /// Which of the broker addresses a connection tries first: the one that last answered, or
    /// the one after the last that failed.
    next_address: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for RabbitMqBroker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RabbitMqBroker")
            .field("exchange", &self.config.exchange)
            .finish_non_exhaustive()
    }
}

impl RabbitMqBroker {
    /// An adapter for `config`. Connects lazily: nothing is opened until the first call.
    pub fn new(config: RabbitMqConfig) -> Self {
        Self {
            config: Arc::new(config),
            publishing: Arc::default(),
            next_address: Arc::default(),
        }
    }

    /// The broker addresses of [`RabbitMqConfig::url`]: its comma-separated AMQP URIs.
    fn addresses(&self) -> Vec<&str> {
        self.config
            .url
            .split(',')
            .map(str::trim)
            .filter(|address| !address.is_empty())
            .collect()
    }

    /// The settings in use.
    pub fn config(&self) -> &RabbitMqConfig {
        &self.config
    }

    /// Opens a connection and one channel to one of the broker's addresses, tried in turn from
    /// the one that last answered (or the one after the last that failed), each within its share of
    /// the publish time-out.
    async fn open(&self, purpose: &str) -> Result<(Connection, Channel), BrokerError> {
        use std::sync::atomic::Ordering;
        let addresses = self.addresses();
        let count = addresses.len().max(1);
        let share = (self.config.publish_timeout / u32::try_from(count).unwrap_or(u32::MAX))
            .max(Duration::from_secs(1));
        let first = self.next_address.load(Ordering::Relaxed);
        let mut last_error = None;
        for step in 0..count {
            let index = (first + step) % count;
            let address = addresses.get(index).copied().unwrap_or_default();
            match self.open_at(address, purpose, share).await {
                Ok(opened) => {
                    self.next_address.store(index, Ordering::Relaxed);
                    return Ok(opened);
                }
                Err(error) => {
                    if count > 1 {
                        tracing::warn!(%error, broker = index + 1, of = count,
                            "a RabbitMQ address did not answer; trying the next");
                    }
                    self.next_address
                        .store((index + 1) % count, Ordering::Relaxed);
                    last_error = Some(error);
                }
            }
        }
        Err(last_error
            .unwrap_or_else(|| BrokerError::Unavailable(Cause::msg("no AMQP_BROKER_URL address"))))
    }

    /// Opens a connection and one channel to `address` within `timeout`.
    async fn open_at(
        &self,
        address: &str,
        purpose: &str,
        timeout: Duration,
    ) -> Result<(Connection, Channel), BrokerError> {
        let properties = ConnectionProperties::default()
            .with_connection_name(format!("{} {purpose}", self.config.connection_name).into());
        let connect = async {
            // For amqps://: the system's roots, plus the configured CA (lapin over rustls).
            let tls = lapin::tcp::OwnedTLSConfig {
                identity: None,
                cert_chain: self.config.ca_pem.clone(),
            };
            let runtime = lapin::runtime::default_runtime().map_err(|e| unavailable(&e))?;
            let mut uri: lapin::uri::AMQPUri = address.parse().map_err(|e: String| {
                BrokerError::Unavailable(Cause::msg(format!("AMQP_BROKER_URL: {e}")))
            })?;
            uri.query.frame_max.get_or_insert(FRAME_MAX);
            let connection = uri
                .connect_with_config(properties, tls, runtime)
                .await
                .map_err(|e| unavailable(&e))?;
            let channel = connection
                .create_channel()
                .await
                .map_err(|e| unavailable(&e))?;
            Ok::<_, BrokerError>((connection, channel))
        };
        tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| BrokerError::Unavailable(Cause::msg("connecting to RabbitMQ timed out")))?
    }

    async fn declare_exchange(&self, channel: &Channel) -> Result<(), BrokerError> {
        channel
            .exchange_declare(
                self.config.exchange.as_str().into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|e| BrokerError::Unexpected(Cause::context("declaring exchange", e)))
    }

    async fn declare_on(
        &self,
        channel: &Channel,
        subscription: &Subscription,
    ) -> Result<(), BrokerError> {
        let durable = QueueDeclareOptions {
            durable: true,
            ..QueueDeclareOptions::default()
        };
        let queue_type = self.config.queue_type;
        let declare_error = |queue: &str| {
            let queue = queue.to_owned();
            move |e: lapin::Error| declaration_refused(&queue, queue_type, e)
        };
        let mut typed = FieldTable::default();
        typed.insert(
            "x-queue-type".into(),
            AMQPValue::LongString(queue_type.as_str().into()),
        );
        let mut arguments = typed.clone();
        // A subscription without a dead-letter queue reads one (`Subscription::dead_letters`):
        // that queue never expires.
        if let Some(expires) = self
            .config
            .queue_expires
            .filter(|_| subscription.dead_letter)
        {
            let millis = u32::try_from(expires.as_millis()).unwrap_or(u32::MAX);
            arguments.insert("x-expires".into(), AMQPValue::LongUInt(millis));
        }
        self.declare_exchange(channel).await?;
        channel
            .queue_declare(subscription.name.as_str().into(), durable, arguments)
            .await
            .map_err(declare_error(&subscription.name))?;
        for name in &subscription.event_names {
            channel
                .queue_bind(
                    subscription.name.as_str().into(),
                    self.config.exchange.as_str().into(),
                    name.as_str().into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(declare_error(&subscription.name))?;
        }
        if subscription.dead_letter {
            // Without `x-expires`, whatever `queue_expires` says: dead letters are kept.
            let queue = subscription.dead_letter_queue();
            channel
                .queue_declare(queue.as_str().into(), durable, typed)
                .await
                .map_err(declare_error(&queue))?;
        }
        Ok(())
    }

    /// Declares [`RabbitMqConfig::topology`] on `connection`, each subscription on a channel of its
    /// own: a subscription the broker refuses (e.g. its queue exists with other arguments, which
    /// closes the channel) is logged and skipped, since its queue then exists and takes messages.
    ///
    /// # Errors
    /// [`BrokerError::Unavailable`] when the connection is lost meanwhile.
    async fn declare_topology(&self, connection: &Connection) -> Result<(), BrokerError> {
        for subscription in &self.config.topology {
            let channel = connection
                .create_channel()
                .await
                .map_err(|e| unavailable(&e))?;
            match self.declare_on(&channel, subscription).await {
                Ok(()) => {
                    let _ = channel.close(200, "declared".into()).await;
                }
                Err(error) => tracing::warn!(%error, queue = %subscription.name,
                    "declaring a subscriber's queue before publishing failed"),
            }
        }
        Ok(())
    }

    /// The publishing channel, opening it when there is none or the old one is gone.
    async fn publishing_channel(&self) -> Result<Channel, BrokerError> {
        let mut slot = self.publishing.lock().await;
        if let Some((connection, channel)) = slot.as_ref()
            && connection.status().connected()
            && channel.status().connected()
        {
            return Ok(channel.clone());
        }
        *slot = None;
        let (connection, channel) = self.open("publisher").await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| unavailable(&e))?;
        self.declare_exchange(&channel).await?;
        self.declare_topology(&connection).await?;
        *slot = Some((connection, channel.clone()));
        Ok(channel)
    }

    async fn publish_once(&self, message: &Message) -> Result<(), BrokerError> {
        let channel = self.publishing_channel().await?;
        publish_confirmed(&channel, &self.config.exchange, &message.name, message).await
    }
}

fn properties(message: &Message) -> BasicProperties {
    let mut headers = FieldTable::default();
    headers.insert(
        EVENT_NAME_HEADER.into(),
        AMQPValue::LongString(message.name.as_str().into()),
    );
    headers.insert(
        MESSAGE_KEY_HEADER.into(),
        AMQPValue::LongString(message.key.as_str().into()),
    );
    for (name, value) in &message.headers {
        if let Ok(name) = ShortString::try_new(name.as_str()) {
            headers.insert(name, AMQPValue::LongString(value.as_str().into()));
        }
    }
    BasicProperties::default()
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
        .with_message_id(message.id.as_str().into())
        .with_timestamp(u64::try_from(message.timestamp.timestamp()).unwrap_or(0))
        .with_headers(headers)
}

/// Publishes `messages` on one confirm-mode channel, every frame sent before the first confirm is
/// awaited, so that all their confirms are in flight together; one result per message.
async fn publish_pipelined(
    channel: &Channel,
    exchange: &str,
    messages: &[Message],
) -> Vec<Result<(), BrokerError>> {
    // Each basic_publish queues its frames (and takes its delivery tag) synchronously on its first
    // poll, which join_all gives them in order: the frames go out in the order of `messages`, and
    // then all are written and confirmed while they are awaited together.
    let sent = futures_util::future::join_all(messages.iter().map(|message| {
        channel.basic_publish(
            exchange.into(),
            message.name.as_str().into(),
            BasicPublishOptions::default(),
            &message.payload,
            properties(message),
        )
    }))
    .await;
    let mut confirms = Vec::with_capacity(messages.len());
    let mut failed = None;
    for result in sent {
        match result {
            Ok(confirm) if failed.is_none() => confirms.push(confirm),
            Ok(_) => {}
            Err(error) => {
                failed.get_or_insert_with(|| unavailable(&error));
            }
        }
    }
    let confirmed = futures_util::future::join_all(confirms).await;
    let mut results: Vec<Result<(), BrokerError>> = confirmed
        .into_iter()
        .zip(messages)
        .map(|(confirm, message)| match confirm {
            Ok(confirm) if confirm.is_ack() => Ok(()),
            Ok(_) => Err(BrokerError::Refused(Cause::msg(format!(
                "broker nacked message {}",
                message.id
            )))),
            Err(error) => Err(unavailable(&error)),
        })
        .collect();
    if let Some(error) = failed {
        results.resize(messages.len(), Err(error));
    }
    results
}

/// Publishes on a confirm-mode channel and waits for the broker's confirm.
async fn publish_confirmed(
    channel: &Channel,
    exchange: &str,
    routing_key: &str,
    message: &Message,
) -> Result<(), BrokerError> {
    let confirm = channel
        .basic_publish(
            exchange.into(),
            routing_key.into(),
            BasicPublishOptions::default(),
            &message.payload,
            properties(message),
        )
        .await
        .map_err(|e| unavailable(&e))?
        .await
        .map_err(|e| unavailable(&e))?;
    if confirm.is_ack() {
        Ok(())
    } else {
        Err(BrokerError::Refused(Cause::msg(format!(
            "broker nacked message {}",
            message.id
        ))))
    }
}

fn header_text(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// Reads a delivery into a [`Message`]. A message without an id (a reference publisher sends none)
/// gets a fresh one; the event name comes from `x-event-name`, else the routing key.
fn to_message(delivery: &Delivery) -> Message {
    let props = &delivery.properties;
    let mut headers: std::collections::BTreeMap<String, String> = props
        .headers()
        .as_ref()
        .map(|table| {
            table
                .inner()
                .iter()
                .filter_map(|(k, v)| header_text(v).map(|v| (k.as_str().to_owned(), v)))
                .collect()
        })
        .unwrap_or_default();
    let name = headers
        .remove(EVENT_NAME_HEADER)
        .unwrap_or_else(|| delivery.routing_key.as_str().to_owned());
    let key = headers.remove(MESSAGE_KEY_HEADER).unwrap_or_default();
    let timestamp = props
        .timestamp()
        .and_then(|t| i64::try_from(t).ok())
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .unwrap_or_else(Utc::now);
    let id = props.message_id().as_ref().map_or_else(
        || uuid::Uuid::now_v7().to_string(),
        |id| id.as_str().to_owned(),
    );
    Message {
        id,
        name,
        key,
        timestamp,
        payload: delivery.data.clone(),
        headers,
    }
}

#[async_trait]
impl EventPublisher for RabbitMqBroker {
    async fn publish_batch(&self, messages: &[Message]) -> Vec<Result<(), BrokerError>> {
        let attempt = async {
            let channel = self.publishing_channel().await?;
            Ok::<_, BrokerError>(publish_pipelined(&channel, &self.config.exchange, messages).await)
        };
        let results = match tokio::time::timeout(self.config.publish_timeout, attempt).await {
            Ok(Ok(results)) => results,
            Ok(Err(error)) => vec![Err(error); messages.len()],
            Err(_) => vec![
                Err(BrokerError::Unavailable(Cause::msg(format!(
                    "RabbitMQ did not confirm a batch of {} messages within {:?}",
                    messages.len(),
                    self.config.publish_timeout
                ))));
                messages.len()
            ],
        };
        if results
            .iter()
            .any(|r| matches!(r, Err(BrokerError::Unavailable(_))))
        {
            // Drop the broken connection so the next batch opens a fresh one.
            *self.publishing.lock().await = None;
        }
        results
    }

    async fn publish(&self, message: &Message) -> Result<(), BrokerError> {
        let attempt = || async {
            let result = self.publish_once(message).await;
            if let Err(BrokerError::Unavailable(_)) = &result {
                // Drop the broken connection so the next attempt opens a fresh one.
                *self.publishing.lock().await = None;
            }
            result
        };
        let retrying = attempt
            .retry(
                ExponentialBuilder::default()
                    .with_min_delay(Duration::from_millis(100))
                    .with_max_delay(Duration::from_secs(2))
                    .without_max_times(),
            )
            .when(|e| matches!(e, BrokerError::Unavailable(_)))
            .notify(|error, delay| {
                tracing::warn!(%error, retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "publish to RabbitMQ failed, retrying");
            });
        tokio::time::timeout(self.config.publish_timeout, retrying)
            .await
            .map_err(|_| {
                BrokerError::Unavailable(Cause::msg(format!(
                    "RabbitMQ did not confirm message {} within {:?}",
                    message.id, self.config.publish_timeout
                )))
            })?
    }

    async fn close(&self) -> Result<(), BrokerError> {
        if let Some((connection, channel)) = self.publishing.lock().await.take() {
            // Confirms were awaited per publish, so nothing is pending; close politely.
            let _ = channel.close(200, "shutdown".into()).await;
            let _ = connection.close(200, "shutdown".into()).await;
        }
        Ok(())
    }
}

#[async_trait]
impl EventSubscriber for RabbitMqBroker {
    async fn declare(&self, subscription: &Subscription) -> Result<(), BrokerError> {
        let (connection, channel) = self.open("declare").await?;
        let result = self.declare_on(&channel, subscription).await;
        let _ = connection.close(200, "declared".into()).await;
        result
    }

    async fn subscribe(
        &self,
        subscription: &Subscription,
        handler: Arc<dyn MessageHandler>,
    ) -> Result<Consumer, BrokerError> {
        let (broker, consumed) = (self.clone(), subscription.clone());
        Ok(Consumer::spawn(
            &subscription.name,
            Arc::default(),
            move |signals| {
                consume_forever(
                    broker.clone(),
                    consumed.clone(),
                    Arc::clone(&handler),
                    signals,
                )
            },
        ))
    }
}

/// Consumes until stopped, reconnecting with backoff whenever the connection is lost.
async fn consume_forever(
    broker: RabbitMqBroker,
    subscription: Subscription,
    handler: Arc<dyn MessageHandler>,
    signals: ConsumerSignals,
) {
    let mut delays = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(200))
        .with_max_delay(Duration::from_secs(5))
        .without_max_times()
        .build();
    while !signals.is_stopping() {
        match consume_session(&broker, &subscription, handler.as_ref(), &signals).await {
            Ok(()) => break,
            Err(error) => {
                signals.set_attached(false);
                let delay = delays.next().unwrap_or(Duration::from_secs(5));
                tracing::warn!(%error, queue = %subscription.name,
                    retry_in_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                    "RabbitMQ consumer lost its connection, reconnecting");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = signals.stopping() => {}
                }
            }
        }
    }
    signals.set_attached(false);
}

/// Most handled deliveries acknowledged in one `basic.ack` (with `multiple`).
const ACK_BATCH: usize = 64;

/// Handled deliveries of a consumer's channel not acknowledged yet (see [`consume_session`]).
struct Unacked<'a> {
    channel: &'a Channel,
    /// The delivery tag of the last of them (with `multiple` it covers all of them).
    last: Option<u64>,
    count: usize,
}

impl<'a> Unacked<'a> {
    fn on(channel: &'a Channel) -> Self {
        Self {
            channel,
            last: None,
            count: 0,
        }
    }

    /// Adds a handled delivery; acknowledges the batch when it is full.
    async fn add(&mut self, delivery_tag: u64) -> Result<(), BrokerError> {
        self.last = Some(delivery_tag);
        self.count += 1;
        if self.count >= ACK_BATCH {
            self.flush().await
        } else {
            Ok(())
        }
    }

    /// Acknowledges every delivery added so far.
    async fn flush(&mut self) -> Result<(), BrokerError> {
        self.count = 0;
        match self.last.take() {
            Some(tag) => self
                .channel
                .basic_ack(tag, BasicAckOptions { multiple: true })
                .await
                .map(drop)
                .map_err(|e| unavailable(&e)),
            None => Ok(()),
        }
    }
}

/// One connection's worth of consuming. `Ok` when stopped on purpose, `Err` when the connection broke.
async fn consume_session(
    broker: &RabbitMqBroker,
    subscription: &Subscription,
    handler: &dyn MessageHandler,
    signals: &ConsumerSignals,
) -> Result<(), BrokerError> {
    let (connection, channel) = broker.open("consumer").await?;
    // The connection's errors, watched beside the deliveries: a connection reset by a node that
    // died does not always end the delivery stream or an awaited acknowledgement (seen with lapin
    // 4.12 when a cluster node was killed), and the session must end for the consumer to move to
    // another node.
    let mut events = connection.events_listener();
    let lost = async move {
        while let Some(event) = events.next().await {
            if let lapin::Event::Error(error) = event {
                return unavailable(&error);
            }
        }
        BrokerError::Unavailable(Cause::msg("the connection closed"))
    };
    let consumed = async {
        broker.declare_on(&channel, subscription).await?;
        channel
            .basic_qos(broker.config.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| unavailable(&e))?;
        let dead_letters = connection
            .create_channel()
            .await
            .map_err(|e| unavailable(&e))?;
        dead_letters
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| unavailable(&e))?;
        let tag = format!("{}-{}", subscription.name, uuid::Uuid::now_v7());
        let mut deliveries = channel
            .basic_consume(
                subscription.name.as_str().into(),
                tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|e| unavailable(&e))?;
        signals.set_attached(true);
        tracing::info!(queue = %subscription.name, "RabbitMQ consumer attached");

        // Handled deliveries not yet acknowledged: acknowledged together (`multiple`, up to the last
        // one's tag) when no further delivery is waiting, every ACK_BATCH deliveries, before a dead
        // letter and when stopping. A crash before that only has them delivered again (at least once).
        let mut unacked = Unacked::on(&channel);
        loop {
            let delivery = match deliveries.next().now_or_never() {
                Some(ready) => ready,
                None => {
                    if let Err(error) = unacked.flush().await {
                        break Err(error);
                    }
                    tokio::select! {
                        biased;
                        () = signals.stopping() => break unacked.flush().await,
                        delivery = deliveries.next() => delivery,
                    }
                }
            };
            if signals.stop.is_cancelled() {
                // Stopping: this delivery is left unacknowledged for the next consumer.
                break unacked.flush().await;
            }
            let delivery = match delivery {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => break Err(unavailable(&error)),
                None => {
                    break Err(BrokerError::Unavailable(Cause::msg(
                        "the broker cancelled the consumer".to_owned(),
                    )));
                }
            };
            let message = to_message(&delivery);
            let outcome = tokio::select! {
                biased;
                // A crash: leave the delivery unacknowledged; closing the connection returns it to the queue.
                () = signals.kill.cancelled() => break Ok(()),
                outcome = process(handler, &message, broker.config.retry, signals.metrics()) => outcome,
            };
            let settled = match outcome {
                Outcome::Ack => unacked.add(delivery.delivery_tag).await,
                Outcome::DeadLetter(reason) => match unacked.flush().await {
                    Ok(()) => {
                        dead_letter(&dead_letters, subscription, message, reason, &delivery).await
                    }
                    Err(error) => Err(error),
                },
            };
            if let Err(error) = settled {
                break Err(error);
            }
        }
    };
    let result = tokio::select! {
        biased;
        result = consumed => result,
        error = lost => Err(error),
    };
    signals.set_attached(false);
    let _ = connection.close(200, "consumer stopped".into()).await;
    result
}

/// Moves a delivery to the dead-letter queue: publish a copy with the reason (confirmed), then ack the
/// original. If the copy cannot be published the original goes back to its queue; nothing is lost.
async fn dead_letter(
    channel: &Channel,
    subscription: &Subscription,
    mut message: Message,
    reason: String,
    delivery: &Delivery,
) -> Result<(), BrokerError> {
    if !subscription.dead_letter {
        tracing::error!(message_id = %message.id, %reason, queue = %subscription.name,
            "dead letter could not be handled; returned to its queue");
        tokio::time::sleep(Duration::from_secs(1)).await;
        return delivery
            .nack(BasicNackOptions {
                requeue: true,
                ..BasicNackOptions::default()
            })
            .await
            .map(drop)
            .map_err(|e| unavailable(&e));
    }
    mark_dead_letter(subscription, &mut message, reason);
    match publish_confirmed(channel, "", &subscription.dead_letter_queue(), &message).await {
        Ok(()) => delivery
            .ack(BasicAckOptions::default())
            .await
            .map(drop)
            .map_err(|e| unavailable(&e)),
        Err(error) => {
            let _ = delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..BasicNackOptions::default()
                })
                .await;
            Err(error)
        }
    }
}
