//! The transactional outbox on DynamoDB: `outbox#<message id>` items written in the transaction of
//! the change they announce, found through `gsi1` partition `outbox` in message id order, deleted
//! once published; the relay's claim in `relay#outbox {holder, until}` (`until` in milliseconds
//! since the Unix epoch).

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{DeleteRequest, WriteRequest};
use myevents_domain::messages::OutboxMessage;

use super::items::{OUTBOX, OutboxItem, millis, time};
use super::{DynamoStore, Expr, Index, Range, from_item, n, s};
use crate::{Backlog, Cause, Outbox, RepositoryError};

/// The key of the relay's claim.
const CLAIM: &str = "relay#outbox";

/// Most deletions in one `BatchWriteItem`.
const BATCH: usize = 25;

/// The outbox of one service's table.
#[derive(Debug, Clone)]
pub struct DynamoOutbox {
    store: DynamoStore,
}

impl DynamoOutbox {
    /// The outbox in `store`'s table.
    pub fn new(store: &DynamoStore) -> Self {
        Self {
            store: store.clone(),
        }
    }
}

/// `announce` as a write of the transaction of the change it announces.
///
/// # Errors
/// [`RepositoryError::Unexpected`] when the request cannot be built (never).
pub(crate) fn stage(
    store: &DynamoStore,
    announce: &OutboxMessage,
) -> Result<aws_sdk_dynamodb::types::TransactWriteItem, RepositoryError> {
    store.put(
        super::to_item(&OutboxItem::from(announce))?,
        Some("attribute_not_exists(#pk)"),
        &Expr::new(),
    )
}

#[async_trait]
impl Outbox for DynamoOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, RepositoryError> {
        self.store
            .query(Index::G1, OUTBOX, Range::All, limit.max(1))
            .await?
            .into_iter()
            .map(|item| OutboxMessage::try_from(from_item::<OutboxItem>(item)?))
            .collect()
    }

    async fn mark_published(&self, ids: &[String]) -> Result<(), RepositoryError> {
        for chunk in ids.chunks(BATCH) {
            let mut requests = chunk
                .iter()
                .map(|id| {
                    let delete = DeleteRequest::builder()
                        .key("pk", s(format!("outbox#{id}")))
                        .build()
                        .map_err(|e| RepositoryError::Unexpected(Cause::new(e)))?;
                    Ok(WriteRequest::builder().delete_request(delete).build())
                })
                .collect::<Result<Vec<_>, RepositoryError>>()?;
            // DynamoDB may leave some unprocessed (throttling): send those again, a few times.
            for _ in 0..8 {
                if requests.is_empty() {
                    break;
                }
                let out = self
                    .store
                    .client()
                    .batch_write_item()
                    .request_items(self.store.table(), requests)
                    .send()
                    .await
                    .map_err(|e| self.store.sdk_error("BatchWriteItem", e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut left| left.remove(self.store.table()))
                    .unwrap_or_default();
                if !requests.is_empty() {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
            if !requests.is_empty() {
                return Err(RepositoryError::Unavailable(Cause::msg(format!(
                    "BatchWriteItem left {} published outbox messages unmarked",
                    requests.len()
                ))));
            }
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, RepositoryError> {
        let pending = self.store.count(Index::G1, OUTBOX).await?;
        let oldest = match self
            .store
            .query(Index::G1, OUTBOX, Range::All, 1)
            .await?
            .into_iter()
            .next()
        {
            Some(item) => Some(time(from_item::<OutboxItem>(item)?.occurred_at)?),
            None => None,
        };
        Ok(Backlog { pending, oldest })
    }

    async fn claim(
        &self,
        relay: &str,
        lease: std::time::Duration,
    ) -> Result<bool, RepositoryError> {
        let now = millis(chrono::Utc::now());
        let until = now.saturating_add(i64::try_from(lease.as_millis()).unwrap_or(i64::MAX));
        self.store
            .update_if(
                CLAIM,
                "SET #holder = :relay, #until = :until",
                "attribute_not_exists(#holder) OR #holder = :relay OR #until <= :now",
                &Expr::new()
                    .value(":relay", s(relay))
                    .value(":until", n(until))
                    .value(":now", n(now)),
            )
            .await
    }

    async fn release(&self, relay: &str) -> Result<(), RepositoryError> {
        // Another relay's claim (or none) stays as it is.
        self.store
            .update_if(
                CLAIM,
                "REMOVE #holder, #until",
                "#holder = :relay",
                &Expr::new().value(":relay", s(relay)),
            )
            .await
            .map(|_| ())
    }
}
