//! Which broker a service uses and how to reach it: plain data, compiled whatever adapters are built
//! in, read from the environment once (`BROKER_KIND` and the kind's variables). The factory that turns
//! it into adapters is `myevents_messaging::broker::build` (it also knows the Kafka adapter, which
//! lives in its own crate).

use std::time::Duration;

use myevents_platform::config::{ConfigError, credential, parse_or, seconds_or, var};

/// The topic exchange of RabbitMQ (and the reference's), when `AMQP_EXCHANGE` is unset.
pub const DEFAULT_EXCHANGE: &str = "events";

/// The Kafka topic all events go through, when `KAFKA_TOPIC` is unset; dead letters go to
/// `<topic>.dlq`.
pub const DEFAULT_TOPIC: &str = "events";

/// Partitions of the Kafka topics a service creates, when `KAFKA_PARTITIONS` is unset.
pub const DEFAULT_PARTITIONS: i32 = 3;

/// The AMQP URI when `AMQP_BROKER_URL` is unset (the reference's default broker).
pub const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@localhost:5672/%2f";

/// The Kafka bootstrap servers when `KAFKA_BROKER_URLS` is unset.
pub const DEFAULT_KAFKA_BROKERS: &str = "localhost:9092";

/// The SNS topic all events go through (`<topic>.fifo`), when `SQS_TOPIC` is unset.
pub const DEFAULT_SQS_TOPIC: &str = "events";

/// Which broker to use and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BrokerConfig {
    /// The in-process broker (only useful when both services share one process).
    Memory,
    /// RabbitMQ.
    RabbitMq {
        /// AMQP URI (`AMQP_BROKER_URL`), or several separated by commas.
        url: String,
        /// The topic exchange (`AMQP_EXCHANGE`, default `events`).
        exchange: String,
        /// Delete idle queues after this long (`AMQP_QUEUE_EXPIRES`, seconds; unset: never).
        queue_expires: Option<Duration>,
        /// The type of the queues declared (`AMQP_QUEUE_TYPE`, default quorum).
        queue_type: QueueType,
        /// PEM certificates to trust for `amqps://` besides the system's (`AMQP_CA_FILE`).
        ca_file: Option<std::path::PathBuf>,
    },
    /// Kafka.
    Kafka {
        /// Bootstrap servers (`KAFKA_BROKER_URLS`, comma-separated).
        brokers: Vec<String>,
        /// The topic (`KAFKA_TOPIC`, default `events`); dead letters go to `<topic>.dlq`.
        topic: String,
        /// Partitions of topics the service creates (`KAFKA_PARTITIONS`, default 3).
        partitions: i32,
        /// Replication of the topics the service creates.
        replication: KafkaReplication,
        /// TLS to the brokers (`KAFKA_SECURITY_PROTOCOL=ssl`); `None` for plaintext (the default).
        tls: Option<KafkaTls>,
    },
    /// Amazon SNS and SQS (region, credentials and endpoint from the AWS SDK's own variables).
    Sqs {
        /// The SNS topic's name without `.fifo` (`SQS_TOPIC`, default `events`).
        topic: String,
        /// Create the topic, queues and subscriptions when missing, or only check them
        /// (`SQS_TOPOLOGY`, default `create`).
        topology: SqsTopology,
        /// The queues' visibility time-out (`SQS_VISIBILITY_TIMEOUT`, whole seconds, 1 to 43,200,
        /// default 30).
        visibility_timeout: Duration,
        /// Receives after which SQS moves a message never deleted to the dead-letter queue
        /// (`SQS_MAX_RECEIVE_COUNT`, 1 to 1,000, default 10).
        max_receive_count: u32,
    },
}

/// Whether the SNS + SQS adapter creates what it misses of the topic, the queues and the
/// subscriptions (`create`, the default), or only checks that they exist (`check`: the deployment
/// owns them, e.g. in Terraform, and the service's role may not create them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SqsTopology {
    /// Create what is missing, and apply the settings to what exists.
    #[default]
    Create,
    /// Only check that everything exists; a missing part stops the start with its name.
    Check,
}

impl SqsTopology {
    /// Reads `SQS_TOPOLOGY` (`create`, the default, or `check`; any case).
    ///
    /// # Errors
    /// [`ConfigError`] for another value.
    fn from_env() -> Result<Self, ConfigError> {
        match var("SQS_TOPOLOGY").map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Self::default()),
            Some(v) if v == "create" => Ok(Self::Create),
            Some(v) if v == "check" => Ok(Self::Check),
            Some(other) => Err(ConfigError::new(
                "SQS_TOPOLOGY",
                &other,
                "expected create or check",
            )),
        }
    }
}

/// The type of the RabbitMQ queues a service declares (`x-queue-type`): quorum queues (the
/// default) keep their messages on a majority of a cluster's nodes (Raft), so that losing a node
/// loses none; classic queues live on one node. A queue keeps the type it was declared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    /// `quorum` (the default; also on one node).
    #[default]
    Quorum,
    /// `classic`.
    Classic,
}

impl QueueType {
    /// The `x-queue-type` value: `quorum` or `classic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Quorum => "quorum",
            Self::Classic => "classic",
        }
    }

    /// Reads `AMQP_QUEUE_TYPE` (`quorum`, the default, or `classic`; any case).
    ///
    /// # Errors
    /// [`ConfigError`] for another value.
    fn from_env() -> Result<Self, ConfigError> {
        match var("AMQP_QUEUE_TYPE").map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Self::default()),
            Some(v) if v == "quorum" => Ok(Self::Quorum),
            Some(v) if v == "classic" => Ok(Self::Classic),
            Some(other) => Err(ConfigError::new(
                "AMQP_QUEUE_TYPE",
                &other,
                "expected quorum or classic",
            )),
        }
    }
}

/// Replication of the Kafka topics a service creates: `KAFKA_REPLICATION_FACTOR` copies of each
/// partition, a publish confirmed (`acks=all`) once `KAFKA_MIN_INSYNC_REPLICAS` hold it. Defaults
/// 1 and 1, for one broker in development; 3 and 2 on a production cluster, so that losing a broker
/// loses nothing and publishing goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaReplication {
    /// Copies of each partition (`KAFKA_REPLICATION_FACTOR`, at least 1).
    pub factor: i32,
    /// Copies that must hold a record before a publish is confirmed (`KAFKA_MIN_INSYNC_REPLICAS`,
    /// 1 to the factor).
    pub min_insync: i32,
}

impl Default for KafkaReplication {
    fn default() -> Self {
        Self {
            factor: 1,
            min_insync: 1,
        }
    }
}

impl KafkaReplication {
    /// Reads `KAFKA_REPLICATION_FACTOR` and `KAFKA_MIN_INSYNC_REPLICAS` (defaults 1).
    ///
    /// # Errors
    /// [`ConfigError`] for a value below 1, or a minimum above the factor.
    fn from_env() -> Result<Self, ConfigError> {
        Self::new(
            parse_or("KAFKA_REPLICATION_FACTOR", 1)?,
            parse_or("KAFKA_MIN_INSYNC_REPLICAS", 1)?,
        )
    }

    /// `factor` copies, `min_insync` of them holding each confirmed publish.
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable for a value below 1, or a minimum above the factor.
    pub fn new(factor: i32, min_insync: i32) -> Result<Self, ConfigError> {
        if factor < 1 {
            return Err(ConfigError::new(
                "KAFKA_REPLICATION_FACTOR",
                &factor.to_string(),
                "must be at least 1",
            ));
        }
        if !(1..=factor).contains(&min_insync) {
            return Err(ConfigError::new(
                "KAFKA_MIN_INSYNC_REPLICAS",
                &min_insync.to_string(),
                "must be at least 1 and at most KAFKA_REPLICATION_FACTOR",
            ));
        }
        Ok(Self { factor, min_insync })
    }
}

/// TLS to the Kafka brokers (librdkafka's `security.protocol=ssl`, by OpenSSL): the brokers'
/// certificates are verified, and so are their host names (`ssl.endpoint.identification.algorithm`
/// `https`, librdkafka's default).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KafkaTls {
    /// PEM certificates (a private CA) to trust **instead of** the system's roots
    /// (`KAFKA_SSL_CA_FILE`, librdkafka's `ssl.ca.location`); `None`: the system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

impl BrokerConfig {
    /// Reads `BROKER_KIND` (`memory` | `rabbitmq` | `kafka` | `sqs`, default `default_kind`), then the kind's
    /// variables: `AMQP_BROKER_URL` (or the file `AMQP_BROKER_URL_FILE` names; default `amqp://guest:guest@localhost:5672/%2f`; `amqps://` for
    /// TLS; several, comma-separated, for the nodes of a cluster), `AMQP_EXCHANGE` (default `events`), `AMQP_QUEUE_EXPIRES` (seconds, unset by default),
    /// `AMQP_QUEUE_TYPE` (`quorum`, the default, or `classic`; see [`QueueType`]) and
    /// `AMQP_CA_FILE` (unset by default); or `KAFKA_BROKER_URLS`
    /// (default `localhost:9092`), `KAFKA_TOPIC` (default `events`), `KAFKA_PARTITIONS` (default 3),
    /// `KAFKA_REPLICATION_FACTOR` and `KAFKA_MIN_INSYNC_REPLICAS` (default 1; see [`KafkaReplication`]),
    /// `KAFKA_SECURITY_PROTOCOL` (`plaintext`, the default, or `ssl`; Kafka's names, any case) and
    /// `KAFKA_SSL_CA_FILE` (unset by default; only with `ssl`); or `SQS_TOPIC` (default `events`),
    /// `SQS_TOPOLOGY` (`create`, the default, or `check`), `SQS_VISIBILITY_TIMEOUT` (seconds, default
    /// 30) and `SQS_MAX_RECEIVE_COUNT` (default 10).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable for an unknown kind, a malformed URL, an unknown or
    /// unsupported security protocol (SASL is not built in), `KAFKA_SSL_CA_FILE` without `ssl`, or
    /// a replication setting out of range.
    pub fn from_env(default_kind: &str) -> Result<Self, ConfigError> {
        let kind = var("BROKER_KIND").unwrap_or_else(|| default_kind.to_owned());
        match kind.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(Self::Memory),
            "rabbitmq" | "amqp" => {
                let url =
                    credential("AMQP_BROKER_URL")?.unwrap_or_else(|| DEFAULT_AMQP_URL.to_owned());
                let is_amqp = |address: &str| {
                    let address = address.trim();
                    address.starts_with("amqp://") || address.starts_with("amqps://")
                };
                if !url.split(',').all(is_amqp) {
                    return Err(ConfigError::new(
                        "AMQP_BROKER_URL",
                        &url,
                        "expected amqp://user:password@host:port/vhost, or several separated by commas",
                    ));
                }
                let exchange = var("AMQP_EXCHANGE").unwrap_or_else(|| DEFAULT_EXCHANGE.to_owned());
                let queue_expires = match var("AMQP_QUEUE_EXPIRES") {
                    None => None,
                    Some(_) => Some(seconds_or("AMQP_QUEUE_EXPIRES", Duration::ZERO)?),
                };
                Ok(Self::RabbitMq {
                    url,
                    exchange,
                    queue_expires,
                    queue_type: QueueType::from_env()?,
                    ca_file: var("AMQP_CA_FILE").map(Into::into),
                })
            }
            "kafka" => {
                let brokers: Vec<String> = var("KAFKA_BROKER_URLS")
                    .unwrap_or_else(|| DEFAULT_KAFKA_BROKERS.to_owned())
                    .split(',')
                    .map(|b| b.trim().to_owned())
                    .filter(|b| !b.is_empty())
                    .collect();
                let topic = var("KAFKA_TOPIC").unwrap_or_else(|| DEFAULT_TOPIC.to_owned());
                let partitions = parse_or("KAFKA_PARTITIONS", DEFAULT_PARTITIONS)?;
                if partitions < 1 {
                    return Err(ConfigError::new(
                        "KAFKA_PARTITIONS",
                        &partitions.to_string(),
                        "must be at least 1",
                    ));
                }
                Ok(Self::Kafka {
                    brokers,
                    topic,
                    partitions,
                    replication: KafkaReplication::from_env()?,
                    tls: kafka_tls()?,
                })
            }
            "sqs" => {
                let visibility_timeout: u64 = parse_or("SQS_VISIBILITY_TIMEOUT", 30)?;
                if !(1..=43_200).contains(&visibility_timeout) {
                    return Err(ConfigError::new(
                        "SQS_VISIBILITY_TIMEOUT",
                        &visibility_timeout.to_string(),
                        "must be 1 to 43200 (whole seconds)",
                    ));
                }
                let max_receive_count = parse_or("SQS_MAX_RECEIVE_COUNT", 10)?;
                if !(1..=1_000).contains(&max_receive_count) {
                    return Err(ConfigError::new(
                        "SQS_MAX_RECEIVE_COUNT",
                        &max_receive_count.to_string(),
                        "must be 1 to 1000",
                    ));
                }
                Ok(Self::Sqs {
                    topic: var("SQS_TOPIC").unwrap_or_else(|| DEFAULT_SQS_TOPIC.to_owned()),
                    topology: SqsTopology::from_env()?,
                    visibility_timeout: Duration::from_secs(visibility_timeout),
                    max_receive_count,
                })
            }
            _ => Err(ConfigError::new(
                "BROKER_KIND",
                &kind,
                "expected memory, rabbitmq, kafka or sqs",
            )),
        }
    }
}

/// `KAFKA_SECURITY_PROTOCOL` and `KAFKA_SSL_CA_FILE`.
fn kafka_tls() -> Result<Option<KafkaTls>, ConfigError> {
    let protocol = var("KAFKA_SECURITY_PROTOCOL").unwrap_or_else(|| "plaintext".to_owned());
    let ca_file = var("KAFKA_SSL_CA_FILE");
    match protocol.trim().to_ascii_lowercase().as_str() {
        "plaintext" => match ca_file {
            // A CA file without TLS would leave the operator believing the traffic is encrypted.
            Some(file) => Err(ConfigError::new(
                "KAFKA_SSL_CA_FILE",
                &file,
                "is set but KAFKA_SECURITY_PROTOCOL is not ssl",
            )),
            None => Ok(None),
        },
        "ssl" => Ok(Some(KafkaTls {
            ca_file: ca_file.map(Into::into),
        })),
        "sasl_plaintext" | "sasl_ssl" => Err(ConfigError::new(
            "KAFKA_SECURITY_PROTOCOL",
            &protocol,
            "SASL is not built in: use ssl (TLS) or plaintext",
        )),
        _ => Err(ConfigError::new(
            "KAFKA_SECURITY_PROTOCOL",
            &protocol,
            "expected plaintext or ssl",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replication_needs_one_copy_and_at_most_as_many_in_sync() {
        assert_eq!(
            KafkaReplication::new(3, 2).expect("valid"),
            KafkaReplication {
                factor: 3,
                min_insync: 2
            }
        );
        let refused = |factor, min_insync| {
            KafkaReplication::new(factor, min_insync)
                .expect_err("refused")
                .to_string()
        };
        assert!(refused(0, 1).contains("KAFKA_REPLICATION_FACTOR"));
        assert!(refused(1, 2).contains("KAFKA_MIN_INSYNC_REPLICAS"));
        assert!(refused(3, 0).contains("KAFKA_MIN_INSYNC_REPLICAS"));
    }
}
