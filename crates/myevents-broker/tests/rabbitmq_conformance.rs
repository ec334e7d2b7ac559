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
