//! The `idempotency_keys` collection: one document per (user, key), unique on the pair.
//!
//! `{_id, user, key, fingerprint, resource_id, token, locked_until, expires_at,
//!   response?: {status, location?, content_type?, body: binary}}`; a TTL index on `expires_at`
//! lets the server remove expired keys (and [`MongoIdempotencyRepository::begin`] treats an expired
//! one as absent, whether or not the server removed it yet).

use crate::Cause;
use async_trait::async_trait;
use mongodb::Collection;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime as BsonDateTime, Document, doc, oid::ObjectId};
use mongodb::options::ReturnDocument;

use super::documents::to_bson_date;
use super::{MongoStore, map_error};
use crate::idempotency::{chrono_duration, new_token};
use crate::{
    Begin, IdempotencyRepository, IdempotencyScope, IdempotentRequest, RepositoryError,
    StoredResponse,
};

pub(crate) const IDEMPOTENCY_KEYS: &str = "idempotency_keys";

/// Idempotency keys in MongoDB; each transition is one conditional single-document write, so it
/// holds across replicas of a service.
#[derive(Debug, Clone)]
pub struct MongoIdempotencyRepository {
    store: MongoStore,
    keys: Collection<Document>,
}

impl MongoIdempotencyRepository {
    /// The repository on `store`'s database (collection `idempotency_keys`).
    pub fn new(store: &MongoStore) -> Self {
        Self {
            store: store.clone(),
            keys: store.database().collection(IDEMPOTENCY_KEYS),
        }
    }
}

fn date(at: chrono::DateTime<chrono::Utc>) -> BsonDateTime {
    to_bson_date(at)
}

fn unexpected(what: &str) -> RepositoryError {
    RepositoryError::Unexpected(Cause::msg(format!(
        "malformed idempotency key document: {what}"
    )))
}

fn text(document: &Document, field: &str) -> Result<String, RepositoryError> {
    document
        .get_str(field)
        .map(str::to_owned)
        .map_err(|_| unexpected(field))
}

fn stored_response(document: &Document) -> Result<StoredResponse, RepositoryError> {
    let status = document
        .get_i32("status")
        .ok()
        .and_then(|s| u16::try_from(s).ok())
        .ok_or_else(|| unexpected("response.status"))?;
    let body = match document.get("body") {
        Some(Bson::Binary(binary)) => binary.bytes.clone(),
        _ => return Err(unexpected("response.body")),
    };
    Ok(StoredResponse {
        status,
        location: document.get_str("location").ok().map(str::to_owned),
        content_type: document.get_str("content_type").ok().map(str::to_owned),
        body,
    })
}

#[async_trait]
impl IdempotencyRepository for MongoIdempotencyRepository {
    async fn begin(
        &self,
        scope: &IdempotencyScope,
        request: &IdempotentRequest,
    ) -> Result<Begin, RepositoryError> {
        self.store.ensure_initialised()?;
        let now = date(request.now);
        let locked_until = date(request.now + chrono_duration(request.lease));
        let expires_at = date(request.now + chrono_duration(request.ttl));
        // A few rounds at most: each lost race means another request changed the record, and the
        // next read sees that change.
        for _ in 0..5 {
            let token = new_token();
            let fresh = doc! {
                "user": &scope.user,
                "key": &scope.key,
                "fingerprint": &request.fingerprint,
                "resource_id": &request.resource_id,
                "token": &token,
                "locked_until": locked_until,
                "expires_at": expires_at,
            };
            let mut inserted = fresh.clone();
            inserted.insert("_id", ObjectId::new());
            match self.keys.insert_one(inserted).await.map_err(map_error) {
                Ok(_) => {
                    return Ok(Begin::Started {
                        token,
                        resource_id: request.resource_id.clone(),
                        resumed: false,
                    });
                }
                Err(RepositoryError::Conflict(_)) => {}
                Err(error) => return Err(error),
            }
            let Some(existing) = self
                .keys
                .find_one(doc! {"user": &scope.user, "key": &scope.key})
                .await
                .map_err(map_error)?
            else {
                continue; // removed (expired) in between
            };
            let id = existing
                .get_object_id("_id")
                .map_err(|_| unexpected("_id"))?;
            let old_token = text(&existing, "token")?;
            let expired = existing
                .get_datetime("expires_at")
                .map_err(|_| unexpected("expires_at"))?;
            if *expired <= now {
                // Expired: start it afresh, unless someone else just did.
                let mut replacement = fresh;
                replacement.insert("_id", id);
                let replaced = self
                    .keys
                    .replace_one(doc! {"_id": id, "token": &old_token}, replacement)
                    .await
                    .map_err(map_error)?;
                if replaced.matched_count == 1 {
                    return Ok(Begin::Started {
                        token,
                        resource_id: request.resource_id.clone(),
                        resumed: false,
                    });
                }
                continue;
            }
            if text(&existing, "fingerprint")? != request.fingerprint {
                return Ok(Begin::Mismatch);
            }
            if let Ok(response) = existing.get_document("response") {
                return Ok(Begin::Completed(stored_response(response)?));
            }
            let held_until = existing
                .get_datetime("locked_until")
                .map_err(|_| unexpected("locked_until"))?;
            if *held_until > now {
                return Ok(Begin::InFlight);
            }
            // The lease ended without a response: resume it with the first request's resource id.
            let resumed = self
                .keys
                .find_one_and_update(
                    doc! {"_id": id, "token": &old_token, "response": {"$exists": false}},
                    doc! {"$set": {"token": &token, "locked_until": locked_until}},
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(map_error)?;
            if let Some(resumed) = resumed {
                return Ok(Begin::Started {
                    token,
                    resource_id: text(&resumed, "resource_id")?,
                    resumed: true,
                });
            }
        }
        Err(RepositoryError::Unavailable(Cause::msg(
            "the idempotency key keeps changing; try again".to_owned(),
        )))
    }

    async fn complete(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        response: &StoredResponse,
    ) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let mut stored = doc! {
            "status": i32::from(response.status),
            "body": Binary { subtype: BinarySubtype::Generic, bytes: response.body.clone() },
        };
        if let Some(location) = &response.location {
            stored.insert("location", location);
        }
        if let Some(content_type) = &response.content_type {
            stored.insert("content_type", content_type);
        }
        let result = self
            .keys
            .update_one(
                doc! {"user": &scope.user, "key": &scope.key, "token": token,
                "response": {"$exists": false}},
                doc! {"$set": {"response": stored}},
            )
            .await
            .map_err(map_error)?;
        Ok(result.matched_count == 1)
    }

    async fn renew(
        &self,
        scope: &IdempotencyScope,
        token: &str,
        until: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let renewed = self
            .keys
            .update_one(
                doc! {"user": &scope.user, "key": &scope.key, "token": token,
                "response": {"$exists": false}},
                doc! {"$set": {"locked_until": date(until)}},
            )
            .await
            .map_err(map_error)?;
        Ok(renewed.matched_count == 1)
    }

    async fn release(&self, scope: &IdempotencyScope, token: &str) -> Result<(), RepositoryError> {
        self.store.ensure_initialised()?;
        self.keys
            .update_one(
                doc! {"user": &scope.user, "key": &scope.key, "token": token,
                "response": {"$exists": false}},
                doc! {"$set": {"locked_until": BsonDateTime::from_millis(0)}},
            )
            .await
            .map_err(map_error)?;
        Ok(())
    }
}
