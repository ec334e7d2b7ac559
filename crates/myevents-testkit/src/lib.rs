//! # myevents-testkit
//!
//! Helpers shared by the MyEvents integration tests (dev-dependency only), every one at the crate
//! root, by module:
//!
//! - `env` (the test environment):
//!   - [`amqp_url`]: the real RabbitMQ the tests use (`MYEVENTS_TEST_AMQP_URL`).
//!   - [`mongo_url`]: the real MongoDB-wire server the tests use (`MYEVENTS_TEST_MONGO_URL`).
//!   - [`kafka_brokers`]: the Kafka-protocol broker the tests use (`MYEVENTS_TEST_KAFKA_BROKERS`).
//!   - [`unique`], [`unique_database`]: names no other test uses (exchanges, queues, databases);
//!     [`QUEUE_EXPIRES`].
//!   - [`rabbitmq_env`], [`rabbitmq_env_on`], [`kafka_env`], [`sqs_env`], [`mongo_env`]: the
//!     variables ([`Env`]) that put service binaries on those servers.
//!   - [`free_port`]: a port nothing listens on, below the ephemeral range.
//!   - feature `rabbitmq`: [`rabbitmq_broker`], an adapter on a fresh exchange; `rabbitmq_broker_on`.
//! - `cluster`: [`RabbitMqCluster`], a RabbitMQ cluster of the test's own from the installed
//!   `rabbitmq-server` (its [`ClusterNode`]s killed and removed when it is dropped).
//! - `http`:
//!   - [`Answer`]: an HTTP answer read whole, with a check for problem bodies.
//!   - [`InProcess`]: a service's router called in process, as a client calls the service.
//!   - [`get_json`], [`post_json`], [`listed_seats`]; [`eventually_answers`]: polls a URL until it
//!     answers a status.
//! - `wait`: [`eventually`]: polls a condition until it holds or a deadline passes — never a fixed
//!   sleep.
//! - `messaging`:
//!   - [`Recorder`]: a message handler that hands every message to the test ([`Recorded`]).
//!   - [`event_created`], [`announce_event`], [`publish_event`]: the event service's `eventCreated`,
//!     published as it would.
//!   - [`an_event_is_booked_across`]: two service processes exchange messages both ways.
//!   - [`create_event_across`]: an event created on one service process, known to the other.
//! - `process`:
//!   - [`ServiceProcess`]: a service binary started as a child process, its address read from its log.
//!   - [`binary_path`]: where cargo put a binary.
//! - `servers` (servers of a test's own):
//!   - [`start_mongo_wire_server`], [`start_mongo_wire_server_with`]: a MongoDB-wire server.
//!   - [`start_kafka_wire_server`]: a Kafka-protocol broker.
//!   - [`TlsRabbitMq`]: a RabbitMQ node of the test's own with a TLS listener (`amqps://`).
//!
//! ```no_run
//! # async fn demo() {
//! let queue = myevents_testkit::unique("booking");
//! let ok = myevents_testkit::eventually(std::time::Duration::from_secs(5), || async { true }).await;
//! assert!(ok);
//! # }
//! ```

mod cluster;
mod env;
mod http;
mod messaging;
mod process;
mod servers;
mod wait;

pub use cluster::{ClusterNode, RabbitMqCluster};
pub use env::{
    Env, QUEUE_EXPIRES, amqp_url, aws_endpoint, aws_env, free_port, kafka_brokers, kafka_env,
    mongo_env, mongo_url, rabbitmq_env, rabbitmq_env_on, sqs_env, unique, unique_database,
};
#[cfg(feature = "rabbitmq")]
pub use env::{rabbitmq_broker, rabbitmq_broker_on};
// `self::`: the `http` crate has the same name.
pub use self::http::{
    Answer, App, InProcess, eventually_answers, get_json, listed_seats, metric_value, post_json,
    scrape,
};
pub use messaging::{
    Recorded, Recorder, an_event_is_booked_across, announce_event, create_event_across,
    event_created, publish_event,
};
pub use process::{ServiceProcess, binary_path};
pub use servers::{
    TlsRabbitMq, start_kafka_wire_server, start_mongo_wire_server, start_mongo_wire_server_with,
};
pub use wait::eventually;
