//! Store settings (plain data, compiled with or without the adapters).

use std::time::Duration;

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
        }
    }
}
