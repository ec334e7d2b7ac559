//! The outbox in memory: pending messages in stored order, and the relay claim.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use myevents_domain::messages::OutboxMessage;

use super::lock;
use crate::{Backlog, Outbox, RepositoryError};

/// Pending outbox messages in memory, by message id (UUID v7: stored order), and the relay claim.
/// Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct InMemoryOutbox {
    state: std::sync::Arc<Mutex<OutboxState>>,
}

#[derive(Debug, Default)]
struct OutboxState {
    pending: BTreeMap<String, OutboxMessage>,
    /// The relay holding the claim and until when.
    claim: Option<(String, std::time::Instant)>,
}

impl InMemoryOutbox {
    pub(super) fn push(&self, message: &OutboxMessage) {
        lock(&self.state)
            .pending
            .insert(message.id.clone(), message.clone());
    }
}

#[async_trait]
impl Outbox for InMemoryOutbox {
    async fn pending(&self, limit: usize) -> Result<Vec<OutboxMessage>, RepositoryError> {
        Ok(lock(&self.state)
            .pending
            .values()
            .take(limit)
            .cloned()
            .collect())
    }

    async fn mark_published(&self, ids: &[String]) -> Result<(), RepositoryError> {
        let mut state = lock(&self.state);
        for id in ids {
            state.pending.remove(id);
        }
        Ok(())
    }

    async fn backlog(&self) -> Result<Backlog, RepositoryError> {
        let state = lock(&self.state);
        Ok(Backlog {
            pending: u64::try_from(state.pending.len()).unwrap_or(u64::MAX),
            oldest: state.pending.values().next().map(|m| m.occurred_at),
        })
    }

    async fn claim(&self, relay: &str, lease: Duration) -> Result<bool, RepositoryError> {
        let now = std::time::Instant::now();
        let mut state = lock(&self.state);
        let free = match &state.claim {
            Some((holder, until)) => holder == relay || *until <= now,
            None => true,
        };
        if free {
            state.claim = Some((relay.to_owned(), now + lease));
        }
        Ok(free)
    }

    async fn release(&self, relay: &str) -> Result<(), RepositoryError> {
        let mut state = lock(&self.state);
        if state
            .claim
            .as_ref()
            .is_some_and(|(holder, _)| holder == relay)
        {
            state.claim = None;
        }
        Ok(())
    }
}
