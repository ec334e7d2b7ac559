//! The booking service's tests, one module per concern: its HTTP API in process over the in-memory
//! adapters (`api`), and what needs the real servers — seats under contention in MongoDB, the
//! reconciliation of a cancellation a crash interrupted in MongoDB — over the MongoDB-wire server and
//! RabbitMQ (`real_servers`). `support` starts the service either way. One test binary, so that they
//! compile and link once; nextest still runs every test in a process of its own.

mod api;
mod real_servers;
mod support;
