//! Organisers' changes of locations: renaming and extending one (`locationUpdated`), deleting one
//! without events to come (`locationDeleted`), each over the revision the caller read.

use myevents_domain::access::Principal;
use myevents_domain::id::{EventId, LocationId};
use myevents_domain::location::{Location, LocationChangeRefused, LocationPatch};
use myevents_domain::messages::{DomainEvent, LocationDeleted, LocationUpdated, OutboxMessage};
use myevents_store::{LocationDeletion, RepositoryError};

use super::{CHANGE_ATTEMPTS, EventService, now_in_whole_seconds};

/// What an organiser does to a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocationChange {
    /// Rename or extend it (announced as `locationUpdated`); see [`Location::patched`].
    Edit(LocationPatch),
    /// Delete it, when no event to come takes place there (announced as `locationDeleted`).
    Delete,
}

/// Change a location on behalf of a caller.
#[derive(Debug, Clone)]
pub struct ChangeLocation {
    /// The location.
    pub id: LocationId,
    /// The change.
    pub change: LocationChange,
    /// Who asks: the organiser who created the location, or an administrator (see
    /// [`Principal::may_manage_location`]).
    pub by: Principal,
    /// The W3C `traceparent` the message continues.
    pub trace_parent: Option<String>,
}

/// Why a location was not changed or deleted.
#[derive(Debug, thiserror::Error)]
pub enum LocationChangeError {
    /// No location with this id (never stored, or deleted).
    #[error("no location with id {0}")]
    NotFound(LocationId),
    /// The caller is neither the location's creator nor an administrator.
    #[error("a location is changed by the organiser who created it and administrators only")]
    Forbidden,
    /// The caller's copy of the location is not the stored one (`If-Match`).
    #[error("the location changed since the copy the request names (If-Match): read it again")]
    Stale,
    /// The change breaks a rule: invalid fields, a hall removed or shrunk.
    #[error(transparent)]
    Refused(#[from] LocationChangeRefused),
    /// An event to come takes place there (this one ends first): cancel or finish it first.
    #[error("event {0} takes place at the location and has not ended: it cannot be deleted")]
    InUse(EventId),
    /// Other changes of the location kept coming first; nothing was changed.
    #[error("the location was changed by others {0} times while this change was tried: try again")]
    Contended(usize),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] RepositoryError),
}

impl EventService {
    /// Changes or deletes a location (see [`LocationChange`]) and announces it, atomically, when
    /// `precondition` holds for the stored location (the caller's copy is the stored one:
    /// `If-Match`; `|_| true` for none). Another change stored between this one's read and write
    /// makes it start over from a fresh read. Answers the location as changed, or `None` once
    /// deleted.
    ///
    /// # Errors
    /// [`LocationChangeError`]: no such location, a caller who may not change it, a stale copy, a
    /// refused change, an event to come there, contention, or the store's failure.
    pub async fn change_location(
        &self,
        command: ChangeLocation,
        precondition: impl Fn(&Location) -> bool + Send,
    ) -> Result<Option<Location>, LocationChangeError> {
        let id = command.id;
        for _ in 0..CHANGE_ATTEMPTS {
            let stored = self
                .locations
                .get(id)
                .await?
                .ok_or(LocationChangeError::NotFound(id))?;
            if !command.by.may_manage_location(stored.organiser.as_ref()) {
                return Err(LocationChangeError::Forbidden);
            }
            if !precondition(&stored) {
                return Err(LocationChangeError::Stale);
            }
            let announce = |event| OutboxMessage::new(event).in_trace(command.trace_parent.clone());
            let done = match &command.change {
                LocationChange::Edit(patch) => {
                    let changed = stored.patched(patch.clone())?;
                    let announce = announce(DomainEvent::LocationUpdated(
                        LocationUpdated::from_location(&changed),
                    ));
                    self.locations
                        .update(&changed, &announce)
                        .await?
                        .then_some(Some(changed))
                }
                LocationChange::Delete => {
                    let now = now_in_whole_seconds();
                    let announce = announce(DomainEvent::LocationDeleted(LocationDeleted {
                        id,
                        revision: stored.revision + 1,
                        deleted_at: now,
                    }));
                    match self
                        .locations
                        .delete(id, stored.revision, &announce, now)
                        .await?
                    {
                        LocationDeletion::Deleted => Some(None),
                        LocationDeletion::InUse(event) => {
                            return Err(LocationChangeError::InUse(event));
                        }
                        LocationDeletion::Stale => None,
                    }
                }
            };
            if let Some(answer) = done {
                self.changed();
                self.waker.wake();
                tracing::info!(location_id = %id, deleted = answer.is_none(), "location changed");
                return Ok(answer);
            }
        }
        Err(LocationChangeError::Contended(CHANGE_ATTEMPTS))
    }
}
