//! Store settings: plain data, compiled with or without the adapters, read from the environment once
//! (`STORE_KIND` and the MongoDB variables). [`crate::factory`] turns them into a service's store.

use std::time::Duration;

use myevents_platform::config::{ConfigError, credential, parse_or, seconds_or, var};

/// The MongoDB connection string when `MONGO_URL` is unset.
pub const DEFAULT_MONGO_URL: &str = "mongodb://127.0.0.1:27017";

/// Settings of a MongoDB store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MongoConfig {
    /// Connection string (the reference's `MONGO_URL`), e.g. `mongodb://127.0.0.1:27017`.
    pub url: String,
    /// The database this service owns.
    pub database: String,
    /// Most pooled connections per server (default 20).
    pub max_pool_size: u32,
    /// Time-out of opening one connection (default 5 s).
    pub connect_timeout: Duration,
    /// How long an operation waits for a usable server before it fails with `Unavailable` (default 5 s).
    pub server_selection_timeout: Duration,
    /// Retry a write once after a network error or failover (default true; needs a replica set).
    pub retry_writes: bool,
    /// How often the driver checks the server (its heartbeat; default 2 s, at least 0.5 s): the
    /// probe interval of the circuit breaker, within which a database that is back is used again.
    pub heartbeat_frequency: Duration,
}

impl MongoConfig {
    /// Defaults for `url` and `database`.
    pub fn new(url: impl Into<String>, database: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            database: database.into(),
            max_pool_size: 20,
            connect_timeout: Duration::from_secs(5),
            server_selection_timeout: Duration::from_secs(5),
            retry_writes: true,
            heartbeat_frequency: Duration::from_secs(2),
        }
    }
}

/// What a DynamoDB store does with its table at start-up (`DYNAMODB_TABLE_SETUP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableSetup {
    /// Creates the table (on-demand capacity, its indexes and TTL) when it is missing (`create`,
    /// the default).
    #[default]
    Create,
    /// Only checks that the table has the key and indexes the adapter needs, and says what is
    /// missing (`check`: the deployment owns the table, e.g. Terraform or CloudFormation).
    Check,
}

/// Settings of a DynamoDB store. Region, endpoint and credentials come from the AWS SDK's default
/// chain (`AWS_REGION`, `AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, web
/// identity for Kubernetes service accounts, the instance profile) unless set here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamoConfig {
    /// The service's table (`DYNAMODB_TABLE`; default `myevents` for the event service,
    /// `myevents-booking` for the booking service).
    pub table: String,
    /// Create or only check the table (`DYNAMODB_TABLE_SETUP`).
    pub setup: TableSetup,
    /// An endpoint instead of AWS's (a local server); `None`: the SDK's own (`AWS_ENDPOINT_URL`).
    pub endpoint: Option<String>,
    /// The region; `None`: the SDK's default chain.
    pub region: Option<String>,
    /// Longest one call may take, the SDK's retries included (`DYNAMODB_OPERATION_TIMEOUT`,
    /// seconds, default 10).
    pub operation_timeout: Duration,
}

impl DynamoConfig {
    /// Defaults for `table`: created when missing, endpoint and region from the SDK's chain, calls
    /// of at most 10 s.
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
            setup: TableSetup::Create,
            endpoint: None,
            region: None,
            operation_timeout: Duration::from_secs(10),
        }
    }
}

/// Which store to use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// In process memory: nothing survives a restart.
    Memory,
    /// MongoDB.
    MongoDb(MongoConfig),
    /// Amazon DynamoDB.
    DynamoDb(DynamoConfig),
}

impl StoreConfig {
    /// Reads `STORE_KIND` (`memory` | `mongodb` | `dynamodb`, default `default_kind`), then for MongoDB:
    /// `MONGO_URL` (or the file `MONGO_URL_FILE` names; default `mongodb://127.0.0.1:27017`), `MONGO_DATABASE` (default
    /// `default_database`), `MONGO_MAX_POOL_SIZE` (connections, default 20), `MONGO_CONNECT_TIMEOUT`
    /// and `MONGO_SERVER_SELECTION_TIMEOUT` (seconds, default 5 each), `MONGO_RETRY_WRITES`
    /// (`true`/`false`, default `true`) and `MONGO_HEARTBEAT_FREQUENCY` (seconds, default 2, at
    /// least 0.5: the circuit breaker's probe interval); for DynamoDB: `DYNAMODB_TABLE` (default
    /// `default_database` with `-` for `_`), `DYNAMODB_TABLE_SETUP` (`create`, the default, or
    /// `check`) and `DYNAMODB_OPERATION_TIMEOUT` (seconds, default 10).
    ///
    /// # Errors
    /// [`ConfigError`] naming the variable.
    pub fn from_env(default_kind: &str, default_database: &str) -> Result<Self, ConfigError> {
        let kind = var("STORE_KIND").unwrap_or_else(|| default_kind.to_owned());
        match kind.trim().to_ascii_lowercase().as_str() {
            "memory" => Ok(Self::Memory),
            "mongodb" | "mongo" => {
                let url = credential("MONGO_URL")?.unwrap_or_else(|| DEFAULT_MONGO_URL.to_owned());
                if !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
                    return Err(ConfigError::new(
                        "MONGO_URL",
                        &url,
                        "expected mongodb://host:port or mongodb+srv://host",
                    ));
                }
                let database = var("MONGO_DATABASE").unwrap_or_else(|| default_database.to_owned());
                if database.is_empty()
                    || database.len() > 63
                    || database.contains(['/', '\\', '.', ' ', '"', '$'])
                {
                    return Err(ConfigError::new(
                        "MONGO_DATABASE",
                        &database,
                        "a database name has 1-63 characters and none of /\\. \"$ or space",
                    ));
                }
                let mut mongo = MongoConfig::new(url, database);
                mongo.max_pool_size = parse_or("MONGO_MAX_POOL_SIZE", mongo.max_pool_size)?;
                mongo.connect_timeout = seconds_or("MONGO_CONNECT_TIMEOUT", mongo.connect_timeout)?;
                mongo.server_selection_timeout = seconds_or(
                    "MONGO_SERVER_SELECTION_TIMEOUT",
                    mongo.server_selection_timeout,
                )?;
                mongo.retry_writes = parse_or("MONGO_RETRY_WRITES", mongo.retry_writes)?;
                mongo.heartbeat_frequency =
                    seconds_or("MONGO_HEARTBEAT_FREQUENCY", mongo.heartbeat_frequency)?;
                if mongo.heartbeat_frequency < Duration::from_millis(500) {
                    return Err(ConfigError::new(
                        "MONGO_HEARTBEAT_FREQUENCY",
                        &format!("{}", mongo.heartbeat_frequency.as_secs_f64()),
                        "the driver checks the server at most every 0.5 s",
                    ));
                }
                Ok(Self::MongoDb(mongo))
            }
            "dynamodb" => {
                let table =
                    var("DYNAMODB_TABLE").unwrap_or_else(|| default_database.replace('_', "-"));
                // DynamoDB's rule for table names.
                if table.len() < 3
                    || table.len() > 255
                    || !table
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
                {
                    return Err(ConfigError::new(
                        "DYNAMODB_TABLE",
                        &table,
                        "a table name has 3-255 characters among a-z, A-Z, 0-9, _ - and .",
                    ));
                }
                let mut dynamo = DynamoConfig::new(table);
                dynamo.setup = match var("DYNAMODB_TABLE_SETUP")
                    .map(|v| v.trim().to_ascii_lowercase())
                    .as_deref()
                {
                    None | Some("create") => TableSetup::Create,
                    Some("check") => TableSetup::Check,
                    Some(other) => {
                        return Err(ConfigError::new(
                            "DYNAMODB_TABLE_SETUP",
                            other,
                            "expected create or check",
                        ));
                    }
                };
                dynamo.operation_timeout =
                    seconds_or("DYNAMODB_OPERATION_TIMEOUT", dynamo.operation_timeout)?;
                if dynamo.operation_timeout.is_zero() {
                    return Err(ConfigError::new(
                        "DYNAMODB_OPERATION_TIMEOUT",
                        "0",
                        "a call needs more than 0 seconds",
                    ));
                }
                Ok(Self::DynamoDb(dynamo))
            }
            _ => Err(ConfigError::new(
                "STORE_KIND",
                &kind,
                "expected memory, mongodb or dynamodb",
            )),
        }
    }
}
