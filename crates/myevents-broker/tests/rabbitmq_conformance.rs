//! The broker conformance suite against the real RabbitMQ at `MYEVENTS_TEST_AMQP_URL`
//! (default `amqp://guest:guest@127.0.0.1:5672/%2f`). Each check uses its own exchange and queues.
#![cfg(feature = "rabbitmq")]

use std::sync::Arc;
use std::time::Duration;

use myevents_broker::RetryPolicy;
use myevents_broker::conformance::BrokerUnderTest;
use myevents_broker::rabbitmq::{RabbitMqBroker, RabbitMqConfig};

fn amqp_url() -> String {
    std::env::var("MYEVENTS_TEST_AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned())
}

myevents_broker::broker_conformance!(async {
    let mut config = RabbitMqConfig::new(amqp_url());
    config.exchange = format!("events-test-{}", uuid::Uuid::now_v7().simple());
    config.queue_expires = Some(Duration::from_secs(600));
    config.retry = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    let broker = RabbitMqBroker::new(config);
    BrokerUnderTest::new(Arc::new(broker.clone()), Arc::new(broker))
});

/// Dead-letters every message.
struct AlwaysPoison;

#[async_trait::async_trait]
impl myevents_broker::MessageHandler for AlwaysPoison {
    async fn handle(
        &self,
        _message: &myevents_broker::Message,
    ) -> Result<(), myevents_broker::HandlingError> {
        Err(myevents_broker::HandlingError::Poison(
            myevents_broker::Cause::msg("never handled"),
        ))
    }
}

/// Passes every message it is given on to a channel.
struct Forward(tokio::sync::mpsc::UnboundedSender<myevents_broker::Message>);

#[async_trait::async_trait]
impl myevents_broker::MessageHandler for Forward {
    async fn handle(
        &self,
        message: &myevents_broker::Message,
    ) -> Result<(), myevents_broker::HandlingError> {
        let _ = self.0.send(message.clone());
        Ok(())
    }
}

/// The messages in queue `name`, or `None` when there is no such queue (a passive declaration,
/// on a connection of its own).
async fn messages_in(name: &str) -> Option<u32> {
    let connection =
        lapin::Connection::connect(&amqp_url(), lapin::ConnectionProperties::default())
            .await
            .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    let passive = lapin::options::QueueDeclareOptions {
        passive: true,
        ..lapin::options::QueueDeclareOptions::default()
    };
    let queue = channel
        .queue_declare(name.into(), passive, lapin::types::FieldTable::default())
        .await
        .ok();
    let _ = connection.close(200, "checked".into()).await;
    queue.map(|queue| queue.message_count())
}

/// `AMQP_QUEUE_EXPIRES` deletes an idle subscription queue, never its dead-letter queue: with a
/// two-second expiry, a dead letter is still there three times that long after the queue lost its
/// consumer (and the queue itself is gone), and is read back for a replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_queue_never_expires_with_its_subscription_queue() {
    use myevents_broker::{EventPublisher, EventSubscriber, Message, Subscription};
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let mut config = RabbitMqConfig::new(amqp_url());
    config.exchange = format!("events-test-{unique}");
    config.queue_expires = Some(Duration::from_secs(2));
    let broker = RabbitMqBroker::new(config);
    let subscription = Subscription::new(format!("test-{unique}-expiring"), &["eventCreated"]);
    broker.declare(&subscription).await.expect("declare");
    let poison = Message::new("eventCreated", "k", b"not json".to_vec());
    broker.publish(&poison).await.expect("publish");
    let consumer = broker
        .subscribe(&subscription, Arc::new(AlwaysPoison))
        .await
        .expect("subscribe");
    let dead_letters = subscription.dead_letter_queue();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while messages_in(&dead_letters).await != Some(1) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    consumer.shutdown().await;

    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        messages_in(&subscription.name).await,
        None,
        "the idle subscription queue expired"
    );
    assert_eq!(
        messages_in(&dead_letters).await,
        Some(1),
        "the dead letter is kept"
    );
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    let reader = broker
        .subscribe(&subscription.dead_letters(), Arc::new(Forward(sender)))
        .await
        .expect("subscribe to the dead letters");
    let replayed = tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .expect("the dead letter within 20 s")
        .expect("a message");
    assert_eq!((replayed.id, replayed.payload), (poison.id, poison.payload));
    reader.shutdown().await;
}

/// Queues are quorum queues unless asked otherwise, and declaring one that exists with the other
/// type is an error that names the queue, both types and the way out (the broker only says
/// PRECONDITION_FAILED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_of_another_type_is_named_with_both_types_and_the_fix() {
    use myevents_broker::config::QueueType;
    use myevents_broker::{BrokerError, EventSubscriber, Subscription};
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let broker = |queue_type| {
        let mut config = RabbitMqConfig::new(amqp_url());
        config.exchange = format!("events-test-{unique}");
        config.queue_expires = Some(Duration::from_secs(600));
        config.queue_type = queue_type;
        RabbitMqBroker::new(config)
    };
    let subscription = Subscription::new(format!("test-{unique}-typed"), &["eventCreated"]);
    broker(QueueType::default())
        .declare(&subscription)
        .await
        .expect("declared as quorum queues");
    let refused = broker(QueueType::Classic).declare(&subscription).await;
    let Err(BrokerError::Misconfigured(cause)) = refused else {
        panic!("a classic declaration of a quorum queue: {refused:?}");
    };
    let text = cause.to_string();
    for named in [
        subscription.name.as_str(),
        "exists as a quorum queue",
        "asks for a classic queue",
        "AMQP_QUEUE_TYPE=quorum",
    ] {
        assert!(text.contains(named), "{named:?} not in: {text}");
    }
    assert_eq!(
        broker(QueueType::Quorum).declare(&subscription).await,
        Ok(()),
        "declared again with its own type"
    );
}

/// With several broker addresses (`AMQP_BROKER_URL=a,b`), a connection passes over one that does
/// not answer for the next: declaring, publishing and consuming go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_address_that_does_not_answer_is_passed_over_for_the_next() {
    use myevents_broker::{EventPublisher, EventSubscriber, Message, Subscription};
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let mut config = RabbitMqConfig::new(format!(
        "amqp://guest:guest@127.0.0.1:{nobody}/%2f, {}",
        amqp_url()
    ));
    config.exchange = format!("events-test-{unique}");
    config.queue_expires = Some(Duration::from_secs(600));
    let broker = RabbitMqBroker::new(config);
    let subscription = Subscription::new(format!("test-{unique}-addresses"), &["eventCreated"]);
    broker.declare(&subscription).await.expect("declared");
    let sent = Message::new("eventCreated", "k", b"{}".to_vec());
    broker.publish(&sent).await.expect("published");
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel();
    let consumer = broker
        .subscribe(&subscription, Arc::new(Forward(sender)))
        .await
        .expect("subscribe");
    let got = tokio::time::timeout(Duration::from_secs(20), received.recv())
        .await
        .expect("within 20 s")
        .expect("a message");
    assert_eq!(got.id, sent.id);
    consumer.shutdown().await;
}
