//! Idempotency keys in memory.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::lock;
use crate::idempotency::{chrono_duration, new_token};
use crate::{
    Begin, IdempotencyRepository, IdempotencyScope, IdempotentRequest, RepositoryError,
    StoredResponse,
};

#[derive(Debug, Clone)]
struct KeyRecord {
    fingerprint: String,
    resource_id: String,
    token: String,
    locked_until: chrono::DateTime<chrono::Utc>,
    expires_at: chrono::DateTime<chrono::Utc>,
    response: Option<StoredResponse>,
}

/// Idempotency keys in memory (they do not survive a restart, as nothing here does). Expired keys
/// are removed in a sweep whenever the number of keys has doubled since the last one (amortised
/// constant time per key), so memory follows the keys within their time to live, as the MongoDB
/// adapter's TTL index does.
#[derive(Debug, Default)]
pub struct InMemoryIdempotencyRepository {
    keys: Mutex<IdempotencyKeys>,
}

#[derive(Debug, Default)]
struct IdempotencyKeys {
    records: HashMap<IdempotencyScope, KeyRecord>,
    /// Sweep expired records once this many are held.
    sweep_at: usize,
}

impl IdempotencyKeys {
    /// Fewest records before the first sweep.
    const FIRST_SWEEP: usize = 1024;

    fn insert(
        &mut self,
        scope: IdempotencyScope,
        record: KeyRecord,
        now: chrono::DateTime<chrono::Utc>,
    ) {
        if self.records.len() >= self.sweep_at.max(Self::FIRST_SWEEP) {
            self.records.retain(|_, r| r.expires_at > now);
            self.sweep_at = 2 * self.records.len();
        }
        self.records.insert(scope, record);
    }

    /// How many keys are held (expired ones not yet swept included).
    fn len(&self) -> usize {
        self.records.len()
    }
}

impl InMemoryIdempotencyRepository {
    /// How many keys are held now, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        lock(&self.keys).len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl IdempotencyRepository for InMemoryIdempotencyRepository {
    async fn begin(
        &self,
        scope: &IdempotencyScope,
        request: &IdempotentRequest,
    ) -> Result<Begin, RepositoryError> {
        let mut keys = lock(&self.keys);
        let fresh = || KeyRecord {
            fingerprint: request.fingerprint.clone(),
            resource_id: request.resource_id.clone(),
            token: new_token(),
            locked_until: request.now + chrono_duration(request.lease),
            expires_at: request.now + chrono_duration(request.ttl),
            response: None,
        };
        let record = match keys.records.get_mut(scope) {
            Some(record) if record.expires_at > request.now => record,
            _ => {
                let record = fresh();
                let started = Begin::Started {
                    token: record.token.clone(),
                    resource_id: record.resource_id.clone(),
                    resumed: false,
                };
                keys.insert(scope.clone(), record, request.now);
                return Ok(started);
            }
        };
        if record.fingerprint != request.fingerprint {
            return Ok(Begin::Mismatch);
        }
        if let Some(response) = &record.response {
            return Ok(Begin::Completed(response.clone()));
        }
        if record.locked_until > request.now {
            return Ok(Begin::InFlight);
        }
        record.token = new_token();
        record.locked_until = request.now + chrono_duration(request.lease);
        Ok(Begin::Started {
            token: record.token.clone(),
            resource_id: record.resource_id.clone(),
            resumed: true,
        })
    }

    async fn complete(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        response: &StoredResponse,
    ) -> Result<bool, RepositoryError> {
        let mut keys = lock(&self.keys);
        match keys.records.get_mut(scope) {
            Some(record) if record.token == token && record.response.is_none() => {
                record.response = Some(response.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn renew(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RepositoryError> {
        let mut keys = lock(&self.keys);
        match keys.records.get_mut(scope) {
            Some(record) if record.token == token && record.response.is_none() => {
                record.locked_until = until;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release(&self, scope: &IdempotencyScope, token: &str) -> Result<(), RepositoryError> {
        let mut keys = lock(&self.keys);
        if let Some(record) = keys.records.get_mut(scope)
            && record.token == token
            && record.response.is_none()
        {
            record.locked_until = chrono::DateTime::<chrono::Utc>::MIN_UTC;
        }
        Ok(())
    }
}

#[cfg(test)]
mod idempotency_sweep_tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn expired_keys_are_swept_so_memory_follows_the_live_keys() {
        let repository = InMemoryIdempotencyRepository::default();
        let start = chrono::Utc::now();
        let request = |at: chrono::DateTime<chrono::Utc>| IdempotentRequest {
            fingerprint: "f".to_owned(),
            resource_id: "r".to_owned(),
            now: at,
            ttl: Duration::from_secs(2),
            lease: Duration::from_secs(1),
        };
        // Five batches of 1,000 keys, each batch after the previous one expired.
        for batch in 0..5i64 {
            let at = start + chrono::TimeDelta::seconds(10 * batch);
            for i in 0..1000 {
                let scope = IdempotencyScope {
                    user: "u".to_owned(),
                    key: format!("{batch}-{i}"),
                };
                repository.begin(&scope, &request(at)).await.expect("begin");
            }
            assert!(
                repository.len() <= 2048,
                "batch {batch}: {} keys held",
                repository.len()
            );
        }
    }
}
