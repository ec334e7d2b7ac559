//! Idempotency keys in DynamoDB: one item per (user, key).
//!
//! Item `idempotency#<length of user>:<user>#<key>` (the user's length in bytes keeps a user
//! containing `#` from being confused with another user's key): `user`, `key`, `fingerprint`,
//! `resource_id`, `token`, `locked_until` and `expires_at` (ms since the Unix epoch), `ttl` (epoch
//! seconds, at or after `expires_at`: DynamoDB removes the item some time after it), and once
//! completed `response` (a map: `status`, `location`?, `content_type`?, `body`? (binary, left out
//! when empty)). An item past its `expires_at` counts as absent, whether or not DynamoDB removed
//! it yet. Each transition is one conditional single-item write (`PutItem`/`UpdateItem`), so it
//! holds across replicas of a service; the responses must fit in an item (400 KB).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use chrono::{DateTime, Utc};

use super::items::millis;
use super::{DynamoStore, Expr, Item, n, s};
use crate::idempotency::{chrono_duration, new_token};
use crate::{
    Begin, Cause, IdempotencyRepository, IdempotencyScope, IdempotentRequest, RepositoryError,
    StoredResponse,
};

/// Rounds of [`IdempotencyRepository::begin`] at most: each lost race means another request
/// changed the item, and the next read sees that change.
const BEGIN_ROUNDS: usize = 5;

/// The condition of the writes only the holder of the lease may make: its token, no response yet.
const HOLDER: &str = "#token = :token AND attribute_not_exists(#resp)";

/// The key of `scope`'s item.
fn key_of(scope: &IdempotencyScope) -> String {
    format!(
        "idempotency#{}:{}#{}",
        scope.user.len(),
        scope.user,
        scope.key
    )
}

/// `now` plus `duration` in ms since the Unix epoch (the latest time there is, when that is
/// beyond it).
fn later_millis(now: DateTime<Utc>, duration: Duration) -> i64 {
    millis(
        now.checked_add_signed(chrono_duration(duration))
            .unwrap_or(DateTime::<Utc>::MAX_UTC),
    )
}

fn malformed(what: &str) -> RepositoryError {
    RepositoryError::Unexpected(Cause::msg(format!(
        "malformed idempotency key item: {what}"
    )))
}

fn text(item: &Item, name: &str) -> Result<String, RepositoryError> {
    item.get(name)
        .and_then(|value| value.as_s().ok())
        .cloned()
        .ok_or_else(|| malformed(name))
}

fn optional_text(item: &Item, name: &str) -> Result<Option<String>, RepositoryError> {
    item.get(name)
        .map(|value| value.as_s().cloned().map_err(|_| malformed(name)))
        .transpose()
}

fn number(item: &Item, name: &str) -> Result<i64, RepositoryError> {
    item.get(name)
        .and_then(|value| value.as_n().ok())
        .and_then(|number| number.parse().ok())
        .ok_or_else(|| malformed(name))
}

/// `response` as its item keeps it.
fn response_value(response: &StoredResponse) -> AttributeValue {
    let mut map = HashMap::new();
    map.insert("status".to_owned(), n(response.status));
    if let Some(location) = &response.location {
        map.insert("location".to_owned(), s(location.as_str()));
    }
    if let Some(content_type) = &response.content_type {
        map.insert("content_type".to_owned(), s(content_type.as_str()));
    }
    if !response.body.is_empty() {
        map.insert(
            "body".to_owned(),
            AttributeValue::B(Blob::new(response.body.clone())),
        );
    }
    AttributeValue::M(map)
}

/// The response an item keeps.
fn stored_response(value: &AttributeValue) -> Result<StoredResponse, RepositoryError> {
    let map = value.as_m().map_err(|_| malformed("response"))?;
    let status = u16::try_from(number(map, "status").map_err(|_| malformed("response.status"))?)
        .map_err(|_| malformed("response.status"))?;
    let body = match map.get("body") {
        None => Vec::new(),
        Some(body) => body
            .as_b()
            .map_err(|_| malformed("response.body"))?
            .clone()
            .into_inner(),
    };
    Ok(StoredResponse {
        status,
        location: optional_text(map, "location")?,
        content_type: optional_text(map, "content_type")?,
        body,
    })
}

/// What [`IdempotencyRepository::begin`] reads of a stored key.
struct KeyRecord {
    fingerprint: String,
    resource_id: String,
    token: String,
    locked_until: i64,
    expires_at: i64,
    response: Option<StoredResponse>,
}

impl KeyRecord {
    fn read(item: &Item) -> Result<Self, RepositoryError> {
        Ok(Self {
            fingerprint: text(item, "fingerprint")?,
            resource_id: text(item, "resource_id")?,
            token: text(item, "token")?,
            locked_until: number(item, "locked_until")?,
            expires_at: number(item, "expires_at")?,
            response: item.get("response").map(stored_response).transpose()?,
        })
    }
}

/// Idempotency keys in DynamoDB (see the module's documentation for the item); each transition
/// is one conditional single-item write, so it holds across replicas of a service.
#[derive(Debug, Clone)]
pub struct DynamoIdempotencyRepository {
    store: DynamoStore,
}

impl DynamoIdempotencyRepository {
    /// The repository on `store`'s table.
    pub fn new(store: &DynamoStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// Sets `locked_until` of the key held by `token` (and not completed) to `until_ms`.
    async fn set_lease(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        until_ms: i64,
    ) -> Result<bool, RepositoryError> {
        let expr = Expr::new()
            .name("#lu", "locked_until")
            .name("#token", "token")
            .name("#resp", "response")
            .value(":until", n(until_ms))
            .value(":token", s(token));
        self.store
            .update_if(&key_of(scope), "SET #lu = :until", HOLDER, &expr)
            .await
    }
}

#[async_trait]
impl IdempotencyRepository for DynamoIdempotencyRepository {
    async fn begin(
        &self,
        scope: &IdempotencyScope,
        request: &IdempotentRequest,
    ) -> Result<Begin, RepositoryError> {
        let pk = key_of(scope);
        let now = millis(request.now);
        let locked_until = later_millis(request.now, request.lease);
        let expires_at = later_millis(request.now, request.ttl);
        // Whole seconds, rounded up: DynamoDB never removes the item before it expires.
        let ttl = expires_at.div_euclid(1000).saturating_add(1);
        for _ in 0..BEGIN_ROUNDS {
            let token = new_token();
            let fresh: Item = HashMap::from([
                ("pk".to_owned(), s(pk.as_str())),
                ("user".to_owned(), s(scope.user.as_str())),
                ("key".to_owned(), s(scope.key.as_str())),
                ("fingerprint".to_owned(), s(request.fingerprint.as_str())),
                ("resource_id".to_owned(), s(request.resource_id.as_str())),
                ("token".to_owned(), s(token.as_str())),
                ("locked_until".to_owned(), n(locked_until)),
                ("expires_at".to_owned(), n(expires_at)),
                ("ttl".to_owned(), n(ttl)),
            ]);
            // Absent, or expired: start it afresh (an expired one replaced in the same write, so
            // of two requests that found it expired one replaces it and the other sees that).
            let absent = Expr::new()
                .name("#pk", "pk")
                .name("#exp", "expires_at")
                .value(":now", n(now));
            if self
                .store
                .put_if(fresh, "attribute_not_exists(#pk) OR #exp <= :now", &absent)
                .await?
            {
                return Ok(Begin::Started {
                    token,
                    resource_id: request.resource_id.clone(),
                    resumed: false,
                });
            }
            let Some(item) = self.store.get(&pk).await? else {
                continue; // removed (expired) in between
            };
            let existing = KeyRecord::read(&item)?;
            if existing.expires_at <= now {
                continue; // expired: the next round replaces it
            }
            if existing.fingerprint != request.fingerprint {
                return Ok(Begin::Mismatch);
            }
            if let Some(response) = existing.response {
                return Ok(Begin::Completed(response));
            }
            if existing.locked_until > now {
                return Ok(Begin::InFlight);
            }
            // The lease ended without a response: resume it with the first request's resource id.
            let resume = Expr::new()
                .name("#token", "token")
                .name("#lu", "locked_until")
                .name("#resp", "response")
                .value(":new", s(token.as_str()))
                .value(":lu", n(locked_until))
                .value(":token", s(existing.token.as_str()));
            if self
                .store
                .update_if(&pk, "SET #token = :new, #lu = :lu", HOLDER, &resume)
                .await?
            {
                return Ok(Begin::Started {
                    token,
                    resource_id: existing.resource_id,
                    resumed: true,
                });
            }
        }
        Err(RepositoryError::Unavailable(Cause::msg(
            "the idempotency key keeps changing; try again",
        )))
    }

    async fn complete(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        response: &StoredResponse,
    ) -> Result<bool, RepositoryError> {
        let expr = Expr::new()
            .name("#token", "token")
            .name("#resp", "response")
            .value(":token", s(token))
            .value(":resp", response_value(response));
        self.store
            .update_if(&key_of(scope), "SET #resp = :resp", HOLDER, &expr)
            .await
    }

    async fn renew(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError> {
        self.set_lease(scope, token, millis(until)).await
    }

    async fn release(&self, scope: &IdempotencyScope, token: &str) -> Result<(), RepositoryError> {
        self.set_lease(scope, token, 0).await?;
        Ok(())
    }
}
