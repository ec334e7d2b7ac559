//! The broker conformance suite against a real AWS-API server: `MYEVENTS_TEST_AWS_ENDPOINT`
//! (default `http://127.0.0.1:5005`; the test command starts moto in server mode there), with the
//! credentials of the SDK's chain (the test command sets test ones for moto). Each check uses its
//! own topic and queues.
//!
//! Where moto differs from AWS: it takes any credentials and ignores the queue policy; FIFO
//! ordering, message groups, deduplication, filter policies, raw delivery, redrive policies,
//! visibility and long polling behave as on AWS for what these checks use.

use std::sync::Arc;
use std::time::Duration;

use myevents_broker::conformance::BrokerUnderTest;
use myevents_broker::{EventPublisher, EventSubscriber, Message, RetryPolicy, Subscription};
use myevents_broker_sqs::{SqsBroker, SqsConfig, SqsTopology};

fn endpoint() -> String {
    std::env::var("MYEVENTS_TEST_AWS_ENDPOINT")
        .unwrap_or_else(|_| "http://127.0.0.1:5005".to_owned())
}

fn config() -> SqsConfig {
    let mut config = SqsConfig::new(format!("events-test-{}", uuid::Uuid::now_v7().simple()));
    config.endpoint = Some(endpoint());
    config.region = Some("eu-west-1".to_owned());
    // Short enough that a crashed consumer's message comes again within the suite's wait (20 s).
    config.visibility_timeout = Duration::from_secs(4);
    config.wait_time = Duration::from_secs(1);
    config.retry = RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    };
    config
}

myevents_broker::broker_conformance!(async {
    let broker = SqsBroker::new(config());
    BrokerUnderTest::new(Arc::new(broker.clone()), Arc::new(broker))
});

/// A handler that takes longer than the visibility time-out keeps its message: the visibility is
/// extended while it runs, so no second consumer gets it meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_handler_keeps_its_message_invisible() {
    use myevents_broker::{HandlingError, MessageHandler};
    use tokio::sync::mpsc;

    struct Slow(mpsc::UnboundedSender<String>, Duration);
    #[async_trait::async_trait]
    impl MessageHandler for Slow {
        async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
            tokio::time::sleep(self.1).await;
            self.0.send(message.id.clone()).ok();
            Ok(())
        }
    }

    let mut config = config();
    config.visibility_timeout = Duration::from_secs(2);
    let broker = SqsBroker::new(config);
    let subscription = Subscription::new(
        format!("slow-{}", uuid::Uuid::now_v7().simple()),
        &["eventCreated"],
    );
    broker.declare(&subscription).await.expect("declared");
    let sent = Message::new("eventCreated", "k", b"{}".to_vec());
    broker.publish(&sent).await.expect("published");

    let (tx, mut rx) = mpsc::unbounded_channel();
    // Three visibility time-outs in the handler; a second consumer polls all along.
    let slow = broker
        .subscribe(
            &subscription,
            Arc::new(Slow(tx.clone(), Duration::from_secs(6))),
        )
        .await
        .expect("slow consumer");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let other = broker
        .subscribe(&subscription, Arc::new(Slow(tx, Duration::ZERO)))
        .await
        .expect("second consumer");
    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("handled")
        .expect("an id");
    assert_eq!(first, sent.id);
    assert!(
        tokio::time::timeout(Duration::from_secs(3), rx.recv())
            .await
            .is_err(),
        "the message was handled twice"
    );
    slow.shutdown().await;
    other.shutdown().await;
}

/// With the topology owned by the deployment (`SQS_TOPOLOGY=check`), a missing topic or queue
/// stops the declaration with an error naming it, and nothing is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_mode_names_what_is_missing_and_creates_nothing() {
    let mut checking = config();
    checking.topology_mode = SqsTopology::Check;
    let topic = checking.topic.clone();
    let subscription = Subscription::new(
        format!("checked-{}", uuid::Uuid::now_v7().simple()),
        &["eventCreated"],
    );
    let refused = SqsBroker::new(checking.clone())
        .declare(&subscription)
        .await
        .expect_err("nothing exists");
    assert!(
        refused.to_string().contains(&format!("{topic}.fifo")),
        "{refused}"
    );

    // Created by a broker allowed to, then the checking one finds everything.
    let mut creating = checking.clone();
    creating.topology_mode = SqsTopology::Create;
    SqsBroker::new(creating)
        .declare(&subscription)
        .await
        .expect("created");
    SqsBroker::new(checking)
        .declare(&subscription)
        .await
        .expect("found");
}

/// SNS and SQS clients of their own on the test server, to change the topology under the adapter.
async fn clients() -> (aws_sdk_sns::Client, aws_sdk_sqs::Client) {
    let shared = myevents_aws::sdk_config(&myevents_aws::AwsSettings {
        endpoint: Some(endpoint()),
        region: Some("eu-west-1".to_owned()),
        operation_timeout: Duration::from_secs(30),
    })
    .await
    .expect("the SDK's configuration");
    (
        aws_sdk_sns::Client::new(&shared),
        aws_sdk_sqs::Client::new(&shared),
    )
}

/// Publishes `message` until it is taken (at most 30 s): the first attempts after a deletion may
/// fail, as the outbox relay's do, until the adapter has declared the topology again.
async fn publish_until_taken(broker: &SqsBroker, message: &Message) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        match broker.publish(message).await {
            Ok(()) => return,
            Err(error) if tokio::time::Instant::now() < deadline => {
                eprintln!("publish refused, trying again: {error}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(error) => panic!("never published again: {error}"),
        }
    }
}

/// The topic and queues deleted under a running service (as when a local AWS-API server that keeps
/// nothing restarts): the consumer and the publisher declare them again by themselves, and the
/// messages published afterwards are delivered. (AWS itself refuses a deleted queue's name for 60 s;
/// the consume runs and the publishes are retried until it takes it again. moto does not wait.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_topology_is_declared_again() {
    use myevents_broker::{HandlingError, MessageHandler};
    use tokio::sync::mpsc;

    struct Forward(mpsc::UnboundedSender<String>);
    #[async_trait::async_trait]
    impl MessageHandler for Forward {
        async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
            self.0.send(message.id.clone()).ok();
            Ok(())
        }
    }
    async fn delivered(rx: &mut mpsc::UnboundedReceiver<String>, sent: &Message) {
        let got = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .unwrap_or_else(|_| panic!("{} not delivered within 30 s", sent.id))
            .expect("an id");
        assert_eq!(got, sent.id);
    }

    let subscription = Subscription::new(
        format!("recreated-{}", uuid::Uuid::now_v7().simple()),
        &["eventCreated"],
    );
    let mut config = config();
    config.topology = vec![subscription.clone()];
    let topic = format!("{}.fifo", config.topic);
    let queue = format!("{}.fifo", subscription.name);
    let dead_letter_queue = format!("{}-dlq.fifo", subscription.name);
    let broker = SqsBroker::new(config);
    broker.declare(&subscription).await.expect("declared");
    let (tx, mut rx) = mpsc::unbounded_channel();
    let consumer = broker
        .subscribe(&subscription, Arc::new(Forward(tx)))
        .await
        .expect("consumer");
    let first = Message::new("eventCreated", "k", b"{}".to_vec());
    broker.publish(&first).await.expect("published");
    delivered(&mut rx, &first).await;

    let (sns, sqs) = clients().await;
    let topic_arn = sns
        .create_topic()
        .name(&topic)
        .attributes("FifoTopic", "true")
        .send()
        .await
        .expect("the topic's ARN")
        .topic_arn()
        .expect("an ARN")
        .to_owned();
    let delete_everything = || async {
        sns.delete_topic()
            .topic_arn(&topic_arn)
            .send()
            .await
            .expect("topic deleted");
        for name in [&queue, &dead_letter_queue] {
            let url = sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .expect("queue URL");
            sqs.delete_queue()
                .queue_url(url.queue_url().expect("a URL"))
                .send()
                .await
                .expect("queue deleted");
        }
    };

    // The consumer finds its queue gone at its next receive and declares everything again; the
    // publisher, which knew the topic, finds it again.
    delete_everything().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let second = Message::new("eventCreated", "k", b"{}".to_vec());
    publish_until_taken(&broker, &second).await;
    delivered(&mut rx, &second).await;

    // The publisher finds the topic gone and declares every subscription of the topology again
    // before it publishes.
    delete_everything().await;
    let third = Message::new("eventCreated", "k", b"{}".to_vec());
    publish_until_taken(&broker, &third).await;
    delivered(&mut rx, &third).await;
    consumer.shutdown().await;
}
