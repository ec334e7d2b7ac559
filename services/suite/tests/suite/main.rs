//! The suite's end-to-end tests, one module per concern: the service binaries and the embedded suite
//! run as processes against the real servers `scripts/test.sh` starts (RabbitMQ, the MongoDB-wire and
//! Kafka-protocol test servers). One test binary, so that the suite compiles and links once; nextest
//! still runs every test in a process of its own.

mod amqps;
mod authentication;
mod bad_configuration;
mod binary_commands;
mod broker_outage;
mod chaos;
mod contention;
mod crash_retry;
mod dead_letter_replay;
mod embedded;
mod event_changes;
mod holds;
mod hostile_clients;
mod https;
mod kafka_and_mongodb_tls;
mod limits_and_secrets;
mod mongo_topology;
mod monitoring;
mod observability;
mod otlp_export;
mod outbox_crash;
mod rabbitmq_cluster;
mod restart_keeps_data;
mod seat_conservation;
mod seat_hold_crash;
mod start_order;
mod store_circuit;
mod two_processes;
mod waitlist;
