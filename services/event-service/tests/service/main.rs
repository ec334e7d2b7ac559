//! The event service's tests against real servers, one module per concern: its HTTP API, the
//! supervision of its Kafka consumer, and a store outage. One test binary, so that they compile and
//! link once; nextest still runs every test in a process of its own.

mod api;
mod consumer_supervision;
mod store_outage;
