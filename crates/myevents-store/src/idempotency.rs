//! Idempotency keys: the port that remembers what a client's `Idempotency-Key` (IETF draft
//! "The Idempotency-Key HTTP Header Field", draft-ietf-httpapi-idempotency-key-header) did, so that a
//! retried `POST` answers the first response instead of doing the work twice.
//!
//! A key is scoped to its user ([`IdempotencyScope`]). Its record goes through these states:
//! - **in flight**: [`IdempotencyRepository::begin`] stored it and handed the request a lease (a
//!   token, valid until `locked_until`) and a resource id to create its resource under;
//! - **completed**: [`IdempotencyRepository::complete`] stored the response to replay;
//! - **expired**: `ttl` after it was first stored it counts as absent and may be used afresh.
//!
//! A request that dies while it holds the lease (a crash, a dropped connection) leaves the record in
//! flight; once the lease ends, the next request with that key resumes it with the same resource id
//! (`resumed: true`), so it can find a resource the dead request created instead of creating a second.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::RepositoryError;

/// Longest idempotency key accepted, in bytes.
pub const MAX_KEY_LENGTH: usize = 255;

/// A client's idempotency key and the user it belongs to: the same key of two users are two keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyScope {
    /// The user (`X-User-Id`, or `anonymous`).
    pub user: String,
    /// The key as the client sent it (1 ..= [`MAX_KEY_LENGTH`] visible ASCII characters).
    pub key: String,
}

/// A response kept for replay: status, the headers that matter and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    /// HTTP status code.
    pub status: u16,
    /// `Location` header, if any.
    pub location: Option<String>,
    /// `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The body bytes.
    pub body: Vec<u8>,
}

/// What one request with a key does: its fingerprint and the id its resource gets if it creates one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentRequest {
    /// A digest of what makes the request (method, path, body); a key reused with a different
    /// fingerprint is refused.
    pub fingerprint: String,
    /// The id to create the resource under when this request starts the key afresh.
    pub resource_id: String,
    /// When the request arrived.
    pub now: DateTime<Utc>,
    /// How long the request may hold the key before another request may resume it.
    pub lease: Duration,
    /// How long the key is kept after it was first used (at least 24 hours in production).
    pub ttl: Duration,
}

/// What [`IdempotencyRepository::begin`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// This request holds the key now: do the work, creating the resource as `resource_id`, then
    /// [`IdempotencyRepository::complete`] (or [`IdempotencyRepository::release`]) with `token`.
    Started {
        /// Proves the lease to `complete` and `release`.
        token: String,
        /// The id to create the resource under: the request's own, or, when resumed, the one the
        /// first request was given.
        resource_id: String,
        /// An earlier request with this key started and never completed: its resource may exist.
        resumed: bool,
    },
    /// The key was completed before: answer this.
    Completed(StoredResponse),
    /// Another request holds the key now (HTTP 409).
    InFlight,
    /// The key was used for a different request (HTTP 422).
    Mismatch,
}

/// The idempotency keys of one service's store.
#[async_trait]
pub trait IdempotencyRepository: Send + Sync {
    /// Takes the key for `request`, or says why not. Atomic across replicas: of concurrent requests
    /// with one key exactly one is `Started`.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn begin(
        &self,
        scope: &IdempotencyScope,
        request: &IdempotentRequest,
    ) -> Result<Begin, RepositoryError>;

    /// Stores the response of the request holding `token`; later requests with the key replay it.
    /// Returns `false` (and stores nothing) when the lease was lost to another request.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn complete(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        response: &StoredResponse,
    ) -> Result<bool, RepositoryError>;

    /// Extends the lease of the request holding `token` to `until` (its heartbeat while it runs, so
    /// that a short lease outlives only a process that died). Returns `false`, changing nothing,
    /// when the lease was lost to another request or the key already has its response.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn renew(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        until: DateTime<Utc>,
    ) -> Result<bool, RepositoryError>;

    /// Ends the lease of `token` without a response (the request failed in a way worth retrying): the
    /// next request with the key resumes at once, with the same resource id.
    ///
    /// # Errors
    /// `Unavailable`/`Unexpected` on store failure.
    async fn release(&self, scope: &IdempotencyScope, token: &str) -> Result<(), RepositoryError>;
}

/// Converts a [`Duration`] to a `chrono` one, saturating.
pub(crate) fn chrono_duration(duration: Duration) -> chrono::TimeDelta {
    chrono::TimeDelta::from_std(duration).unwrap_or(chrono::TimeDelta::MAX)
}

/// A fresh random lease token.
pub(crate) fn new_token() -> String {
    myevents_domain::id::ObjectId::generate().to_string()
}
