//! The event service's tests, one module per concern: its HTTP API (in process, over the in-memory
//! adapters), and against real servers the supervision of its Kafka consumer and a store outage.
//! One test binary, so that they compile and link once; nextest still runs every test in a process
//! of its own.

mod api;
mod consumer_supervision;
mod store_outage;
