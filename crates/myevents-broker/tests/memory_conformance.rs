//! The broker conformance suite against the in-memory adapter.

use std::sync::Arc;
use std::time::Duration;

use myevents_broker::RetryPolicy;
use myevents_broker::conformance::BrokerUnderTest;
use myevents_broker::memory::InMemoryBroker;

myevents_broker::broker_conformance!(async {
    let broker = InMemoryBroker::with_retry_policy(RetryPolicy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
    });
    BrokerUnderTest::new(Arc::new(broker.clone()), Arc::new(broker))
});
