//! The booking service's collections: `inventory` (one document per event, with its remaining seats)
//! and `bookings`.

use crate::Cause;
use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;
use myevents_domain::booking::{Booking, SeatInventory, UserId, WaitlistEntry, WaitlistOffer};
use myevents_domain::id::{BookingId, EventId, WaitlistEntryId};
use myevents_domain::messages::OutboxMessage;
use myevents_domain::seats::SeatCount;

use super::documents::{
    BookingDoc, HoldDoc, InventoryDoc, OutboxDoc, WaitDoc, outbox_entry, revision, to_bson_date,
    to_bson_id, to_bson_value, waitlist_entries,
};
use super::events::find_page;
use super::{MongoStore, map_error};
use crate::idempotency::new_token;
use crate::now_millis;
use crate::{
    BookingRepository, Cancellation, EventBookingsCancelled, InventoryChange, InventoryChanged,
    InventorySnapshot, JoinWaitlistError, PageRequest, PlaceBookingError, RepositoryError,
    SeatHold, Settled,
};

pub(crate) const INVENTORY: &str = "inventory";
pub(crate) const BOOKINGS: &str = "bookings";

/// Seat inventory and bookings in MongoDB, without multi-document transactions.
///
/// [`BookingRepository::hold_seats`] takes the seats and records the hold with one atomic conditional
/// update on the event's inventory document (`{_id, remaining: {$gte: n}, holds.booking: {$ne: id}}`
/// → `{$inc: {remaining: -n}, $push: {holds: …}}`), so the remaining seats never drop below zero and a
/// booking id never holds seats twice at once. [`BookingRepository::store_held_booking`] then inserts
/// the booking (unique by `_id`, recording the attempt whose hold it used), its `eventBooked` embedded
/// as a pending outbox message, and pulls the hold. A process that dies between the two leaves the
/// hold: the retry with the same idempotency key, or the reconciler, finishes the booking from it.
#[derive(Debug, Clone)]
pub struct MongoBookingRepository {
    store: MongoStore,
    inventory: Collection<InventoryDoc>,
    bookings: Collection<BookingDoc>,
}

impl MongoBookingRepository {
    /// Gives a cancelled booking's seats back to its event's inventory at most once (the inventory
    /// lists the bookings it took back). The booking's `returning` flag stays: the reconciliation
    /// clears the flags of many returns in one write (see
    /// [`BookingRepository::finish_seat_returns`]).
    async fn give_seats_back(&self, booking: &Booking) -> Result<(), RepositoryError> {
        let (filter, update) = seat_return(booking);
        self.inventory
            .update_one(filter, update)
            .await
            .map_err(map_error)?;
        Ok(())
    }

    /// The holds that `keep` accepts among those `array` takes of each inventory `filter` finds
    /// (reservation records or buyers' holds), unsorted.
    async fn holds_where(
        &self,
        filter: Document,
        array: impl Fn(InventoryDoc) -> Vec<HoldDoc>,
        keep: impl Fn(&HoldDoc) -> bool,
    ) -> Result<Vec<SeatHold>, RepositoryError> {
        let mut inventories = self.inventory.find(filter).await.map_err(map_error)?;
        let mut found = Vec::new();
        while let Some(inventory) = inventories.try_next().await.map_err(map_error)? {
            let (id, remaining) = (inventory.id, inventory.remaining);
            for hold in array(inventory).into_iter().filter(|hold| keep(hold)) {
                found.push(hold.into_hold(id, false, remaining)?);
            }
        }
        Ok(found)
    }

    /// The repository on `store`'s database.
    pub fn new(store: &MongoStore) -> Self {
        Self {
            store: store.clone(),
            inventory: store.database().collection(INVENTORY),
            bookings: store.database().collection(BOOKINGS),
        }
    }
}

/// How often [`BookingRepository::change_inventory`] reads and tries again when bookings changed
/// the inventory between its read and its write.
const CHANGE_ATTEMPTS: usize = 50;

/// The filter of an inventory document still at `revision` (documents stored before revisions were
/// kept have none: revision 0).
fn at_revision(id: mongodb::bson::oid::ObjectId, revision: i64) -> Document {
    if revision == 0 {
        doc! {"_id": id, "$or": [{"revision": 0_i64}, {"revision": {"$exists": false}}]}
    } else {
        doc! {"_id": id, "revision": revision}
    }
}

/// The inventory update that gives `booking`'s seats back unless its inventory lists the booking as
/// given back already: `(filter, update)`.
fn seat_return(booking: &Booking) -> (Document, Document) {
    let bid = to_bson_id(booking.id.object_id());
    (
        doc! {"_id": to_bson_id(booking.event_id.object_id()), "returned": {"$ne": bid}},
        doc! {"$inc": {"remaining": i64::from(booking.seats.get())}, "$push": {"returned": bid}},
    )
}

#[async_trait]
impl BookingRepository for MongoBookingRepository {
    async fn add_inventory(&self, inventory: &SeatInventory) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let id = to_bson_id(inventory.event_id.object_id());
        let mut fields = doc! {
            "name": &inventory.event_name,
            "capacity": i64::from(inventory.capacity.get()),
            "remaining": i64::from(inventory.remaining.get()),
            "revision": revision(inventory.revision)?,
        };
        if let Some(organiser) = &inventory.organiser {
            fields.insert("organiser", organiser.as_str());
        }
        let result = self
            .inventory
            .update_one(doc! {"_id": id}, doc! {"$setOnInsert": fields})
            .upsert(true)
            .await
            .map_err(map_error);
        match result {
            Ok(result) => Ok(result.upserted_id.is_some()),
            // Two concurrent upserts of one new id: the loser sees a duplicate key; the event is known.
            Err(RepositoryError::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    async fn change_inventory(
        &self,
        event_id: EventId,
        revision_now: u64,
        change: &InventoryChange,
    ) -> Result<InventoryChanged, RepositoryError> {
        self.store.ensure_initialised()?;
        let id = to_bson_id(event_id.object_id());
        let rev = revision(revision_now)?;
        for _ in 0..CHANGE_ATTEMPTS {
            let Some(current) = self
                .inventory
                .find_one(doc! {"_id": id})
                .await
                .map_err(map_error)?
            else {
                // Not known yet: learned from the change; `eventCreated`, later, adds nothing.
                let mut learned = match change {
                    InventoryChange::Edited {
                        name,
                        capacity,
                        organiser,
                    } => SeatInventory::new(event_id, name.clone(), *capacity)
                        .organised_by(organiser.clone()),
                    InventoryChange::Cancelled(_) => {
                        SeatInventory::new(event_id, String::new(), SeatCount::new(0))
                    }
                };
                learned.revision = revision_now;
                let mut fields = doc! {
                    "name": &learned.event_name,
                    "capacity": i64::from(learned.capacity.get()),
                    "remaining": i64::from(learned.remaining.get()),
                    "revision": rev,
                };
                if let Some(organiser) = &learned.organiser {
                    fields.insert("organiser", organiser.as_str());
                }
                if let InventoryChange::Cancelled(cancellation) = change {
                    learned.cancelled = Some(cancellation.clone());
                    fields.insert("cancelled_at", to_bson_date(cancellation.at));
                    fields.insert("cancel_reason", &cancellation.reason);
                }
                let inserted = self
                    .inventory
                    .update_one(doc! {"_id": id}, doc! {"$setOnInsert": fields})
                    .upsert(true)
                    .await
                    .map_err(map_error);
                match inserted {
                    Ok(result) if result.upserted_id.is_some() => {
                        return Ok(InventoryChanged::Applied(learned));
                    }
                    // Created meanwhile (its `eventCreated`, or another replica): read it again.
                    Ok(_) | Err(RepositoryError::Conflict(_)) => continue,
                    Err(error) => return Err(error),
                }
            };
            let stored_revision = current.revision;
            let filter = at_revision(id, stored_revision);
            let inventory = SeatInventory::try_from(current)?;
            if stored_revision >= rev {
                return Ok(InventoryChanged::Stale(inventory));
            }
            let (filter, update) = match change {
                InventoryChange::Cancelled(cancellation) => {
                    let mut set = doc! {"revision": rev};
                    if inventory.cancelled.is_none() {
                        set.insert("cancelled_at", to_bson_date(cancellation.at));
                        set.insert("cancel_reason", &cancellation.reason);
                    }
                    (filter, doc! {"$set": set})
                }
                InventoryChange::Edited {
                    name,
                    capacity,
                    organiser,
                } => {
                    let mut set = doc! {"name": name, "revision": rev};
                    if let Some(organiser) = organiser {
                        set.insert("organiser", organiser.as_str());
                    }
                    let (now, wanted) = (
                        i64::from(inventory.capacity.get()),
                        i64::from(capacity.get()),
                    );
                    let mut filter = filter;
                    filter.insert("capacity", now);
                    if wanted >= i64::from(inventory.taken().get()) {
                        // Bookings may take or give back seats meanwhile: moving both counts by
                        // the difference stays right while enough seats remain to take it away.
                        filter.insert("remaining", doc! {"$gte": (now - wanted).max(0)});
                        (
                            filter,
                            doc! {"$set": set, "$inc": {"capacity": wanted - now, "remaining": wanted - now}},
                        )
                    } else {
                        // Below the seats taken: the capacity becomes them, exactly as read.
                        let mut resized = inventory.clone();
                        resized.resize(*capacity);
                        filter.insert("remaining", i64::from(inventory.remaining.get()));
                        set.insert("capacity", i64::from(resized.capacity.get()));
                        set.insert("remaining", i64::from(resized.remaining.get()));
                        (filter, doc! {"$set": set})
                    }
                }
            };
            let changed = self
                .inventory
                .find_one_and_update(filter, update)
                .return_document(ReturnDocument::After)
                .await
                .map_err(map_error)?;
            if let Some(changed) = changed {
                return Ok(InventoryChanged::Applied(SeatInventory::try_from(changed)?));
            }
            // A booking or another change came between the read and the write: read again.
        }
        Err(RepositoryError::Unavailable(Cause::msg(format!(
            "the inventory of event {event_id} changed under {CHANGE_ATTEMPTS} attempts to apply revision {revision_now}"
        ))))
    }

    async fn cancel_event_bookings(
        &self,
        event_id: EventId,
        cancelled_at: chrono::DateTime<chrono::Utc>,
        reason: &str,
        announce: &(dyn for<'b> Fn(&'b Booking) -> OutboxMessage + Send + Sync),
    ) -> Result<EventBookingsCancelled, RepositoryError> {
        const PAGE: usize = 1000;
        self.store.ensure_initialised()?;
        let id = to_bson_id(event_id.object_id());
        // Holds are read first: a hold gone by now was stored as its booking before, so the
        // bookings read next include it; no hold can be taken once the event is cancelled.
        let Some(inventory) = self
            .inventory
            .find_one(doc! {"_id": id})
            .await
            .map_err(map_error)?
        else {
            return Ok(EventBookingsCancelled::default());
        };
        let open: Vec<BookingDoc> = self
            .bookings
            .find(doc! {"event_id": id, "cancelled_at": {"$exists": false}})
            .limit(i64::try_from(PAGE).unwrap_or(i64::MAX))
            .await
            .map_err(map_error)?
            .try_collect()
            .await
            .map_err(map_error)?;
        let complete = open.len() < PAGE;
        let mut cancelled = Vec::with_capacity(open.len());
        for document in open {
            let mut booking = Booking::try_from(document)?;
            booking.cancelled_at = Some(cancelled_at);
            booking.cancel_reason = Some(reason.to_owned());
            let outbox = outbox_entry(&announce(&booking))?;
            let marked = self
                .bookings
                .update_one(
                    doc! {"_id": to_bson_id(booking.id.object_id()), "cancelled_at": {"$exists": false}},
                    doc! {
                        "$set": {"cancelled_at": to_bson_date(cancelled_at), "cancel_reason": reason},
                        "$push": {"outbox": outbox},
                    },
                )
                .await
                .map_err(map_error)?;
            // Its buyer may have cancelled it meanwhile (then its seats went back, as any).
            if marked.modified_count == 1 {
                cancelled.push(booking);
            }
        }
        let settled = complete && inventory.holds.is_empty() && inventory.cancelled_at.is_some();
        if settled {
            self.inventory
                .update_one(doc! {"_id": id}, doc! {"$set": {"settled": true}})
                .await
                .map_err(map_error)?;
        }
        Ok(EventBookingsCancelled { cancelled, settled })
    }

    async fn unsettled_cancelled_events(&self) -> Result<Vec<SeatInventory>, RepositoryError> {
        self.store.ensure_initialised()?;
        let documents: Vec<InventoryDoc> = self
            .inventory
            .find(doc! {"cancelled_at": {"$exists": true}, "settled": {"$ne": true}})
            .limit(1000)
            .await
            .map_err(map_error)?
            .try_collect()
            .await
            .map_err(map_error)?;
        documents.into_iter().map(SeatInventory::try_from).collect()
    }

    async fn inventory_snapshot(
        &self,
        event_id: EventId,
    ) -> Result<Option<InventorySnapshot>, RepositoryError> {
        self.store.ensure_initialised()?;
        let Some(document) = self
            .inventory
            .find_one(doc! {"_id": to_bson_id(event_id.object_id())})
            .await
            .map_err(map_error)?
        else {
            return Ok(None);
        };
        let (id, remaining) = (document.id, document.remaining);
        let holds = document
            .holds
            .iter()
            .chain(&document.buyer_holds)
            .map(|hold| hold.clone().into_hold(id, false, remaining))
            .collect::<Result<Vec<_>, _>>()?;
        let waitlist = waitlist_entries(id, document.waitlist.clone())?;
        Ok(Some(InventorySnapshot {
            inventory: SeatInventory::try_from(document)?,
            holds,
            waitlist,
        }))
    }

    async fn inventory(&self, event_id: EventId) -> Result<Option<SeatInventory>, RepositoryError> {
        self.store.ensure_initialised()?;
        self.inventory
            .find_one(doc! {"_id": to_bson_id(event_id.object_id())})
            .await
            .map_err(map_error)?
            .map(SeatInventory::try_from)
            .transpose()
    }

    async fn hold_seats(
        &self,
        booking: &Booking,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<SeatHold, PlaceBookingError> {
        self.store.ensure_initialised()?;
        let event = to_bson_id(booking.event_id.object_id());
        let bid = to_bson_id(booking.id.object_id());
        let seats = i64::from(booking.seats.get());
        let attempt = new_token();
        let held_at = now_millis();
        let hold = to_bson_value(&HoldDoc::new(booking, &attempt, held_at, expires_at))?;
        let array = if expires_at.is_some() {
            "buyer_holds"
        } else {
            "holds"
        };
        // The conditional update takes the seats and records the hold, or matches nothing. Nothing
        // matched can mean an unknown event, too few seats, a hold this booking already has (an
        // earlier attempt, or this update applied once and retried), or an inventory created (or
        // seats given back) between the update and the read that tells which: then try again.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let taken = self
                .inventory
                .find_one_and_update(
                    doc! {
                        "_id": event,
                        "remaining": {"$gte": seats},
                        "holds.booking": {"$ne": bid},
                        "buyer_holds.booking": {"$ne": bid},
                        "cancelled_at": {"$exists": false},
                        "waiting": {"$not": {"$gt": 0}},
                    },
                    doc! {"$inc": {"remaining": -seats}, "$push": {array: hold.clone()}},
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(map_error)?;
            let (inventory, fresh) = match taken {
                Some(inventory) => (inventory, true),
                None => match self
                    .inventory
                    .find_one(doc! {"_id": event})
                    .await
                    .map_err(map_error)?
                {
                    None => return Err(PlaceBookingError::EventNotFound),
                    Some(inventory) => (inventory, false),
                },
            };
            let remaining = inventory.remaining;
            let cancelled = inventory.cancelled_at.is_some();
            let mut holds = inventory.holds.into_iter().chain(inventory.buyer_holds);
            if let Some(found) = holds.find(|h| h.booking == bid) {
                let fresh = fresh || found.attempt == attempt;
                return Ok(found.into_hold(event, fresh, remaining)?);
            }
            if cancelled {
                return Err(PlaceBookingError::EventCancelled);
            }
            if remaining < seats || inventory.waiting > 0 || attempts >= 5 {
                return Err(PlaceBookingError::SoldOut {
                    remaining: SeatCount::new(u32::try_from(remaining.max(0)).unwrap_or(0)),
                });
            }
        }
    }

    async fn seat_hold(&self, id: BookingId) -> Result<Option<SeatHold>, RepositoryError> {
        self.store.ensure_initialised()?;
        let bid = to_bson_id(id.object_id());
        let found = self
            .inventory
            .find_one(doc! {"$or": [{"holds.booking": bid}, {"buyer_holds.booking": bid}]})
            .await
            .map_err(map_error)?;
        let Some(inventory) = found else {
            return Ok(None);
        };
        let (event, remaining) = (inventory.id, inventory.remaining);
        inventory
            .holds
            .into_iter()
            .chain(inventory.buyer_holds)
            .find(|hold| hold.booking == bid)
            .map(|hold| hold.into_hold(event, false, remaining))
            .transpose()
    }

    async fn claim_hold(
        &self,
        hold: &SeatHold,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let event = to_bson_id(hold.booking.event_id.object_id());
        let bid = to_bson_id(hold.booking.id.object_id());
        let claimed = to_bson_value(&HoldDoc::new(&hold.booking, &hold.attempt, now, None))?;
        let moved = self
            .inventory
            .update_one(
                doc! {
                    "_id": event,
                    "cancelled_at": {"$exists": false},
                    "buyer_holds": {"$elemMatch": {
                        "booking": bid,
                        "attempt": &hold.attempt,
                        "expires_at": {"$gt": to_bson_date(now)},
                    }},
                },
                doc! {
                    "$pull": {"buyer_holds": {"booking": bid, "attempt": &hold.attempt}},
                    "$push": {"holds": claimed},
                },
            )
            .await
            .map_err(map_error)?;
        Ok(moved.modified_count == 1)
    }

    async fn release_hold(
        &self,
        hold: &SeatHold,
        lapsed_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let event = to_bson_id(hold.booking.event_id.object_id());
        let bid = to_bson_id(hold.booking.id.object_id());
        let mut this_hold = doc! {"booking": bid, "attempt": &hold.attempt};
        if let Some(at) = lapsed_at {
            this_hold.insert("expires_at", doc! {"$lte": to_bson_date(at)});
        }
        let released = self
            .inventory
            .update_one(
                doc! {"_id": event, "buyer_holds": {"$elemMatch": this_hold}},
                doc! {
                    "$inc": {"remaining": i64::from(hold.booking.seats.get())},
                    "$pull": {"buyer_holds": {"booking": bid, "attempt": &hold.attempt}},
                },
            )
            .await
            .map_err(map_error)?;
        Ok(released.modified_count == 1)
    }

    async fn join_waitlist(
        &self,
        entry: &WaitlistEntry,
    ) -> Result<WaitlistEntry, JoinWaitlistError> {
        self.store.ensure_initialised()?;
        let event = to_bson_id(entry.event_id.object_id());
        let eid = to_bson_id(entry.id.object_id());
        let seats = i64::from(entry.seats.get());
        let document = to_bson_value(&WaitDoc::from(&WaitlistEntry {
            offer: None,
            ..entry.clone()
        }))?;
        let joined = self
            .inventory
            .find_one_and_update(
                doc! {
                    "_id": event,
                    "cancelled_at": {"$exists": false},
                    "waitlist.id": {"$ne": eid},
                    "$or": [{"remaining": {"$lt": seats}}, {"waiting": {"$gt": 0}}],
                },
                doc! {"$push": {"waitlist": document}, "$inc": {"waiting": 1}},
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_error)?;
        let inventory = match joined {
            Some(inventory) => inventory,
            None => self
                .inventory
                .find_one(doc! {"_id": event})
                .await
                .map_err(map_error)?
                .ok_or(JoinWaitlistError::EventNotFound)?,
        };
        let (cancelled, remaining) = (inventory.cancelled_at.is_some(), inventory.remaining);
        if let Some(found) = waitlist_entries(inventory.id, inventory.waitlist)?
            .into_iter()
            .find(|e| e.id == entry.id)
        {
            return Ok(found);
        }
        if cancelled {
            return Err(JoinWaitlistError::EventCancelled);
        }
        Err(JoinWaitlistError::SeatsAvailable {
            remaining: SeatCount::new(u32::try_from(remaining.max(0)).unwrap_or(0)),
        })
    }

    async fn waitlist_entry(
        &self,
        id: WaitlistEntryId,
    ) -> Result<Option<WaitlistEntry>, RepositoryError> {
        self.store.ensure_initialised()?;
        let eid = to_bson_id(id.object_id());
        let Some(inventory) = self
            .inventory
            .find_one(doc! {"waitlist.id": eid})
            .await
            .map_err(map_error)?
        else {
            return Ok(None);
        };
        Ok(waitlist_entries(inventory.id, inventory.waitlist)?
            .into_iter()
            .find(|entry| entry.id == id))
    }

    async fn waitlist_of_user(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<WaitlistEntry>, RepositoryError> {
        self.store.ensure_initialised()?;
        let mut inventories = self
            .inventory
            .find(doc! {"waitlist.user_id": user_id.as_str()})
            .await
            .map_err(map_error)?;
        let mut entries = Vec::new();
        while let Some(inventory) = inventories.try_next().await.map_err(map_error)? {
            entries.extend(
                waitlist_entries(inventory.id, inventory.waitlist)?
                    .into_iter()
                    .filter(|entry| &entry.user_id == user_id),
            );
        }
        entries.sort_by_key(|entry| (entry.joined_at, entry.id));
        entries.truncate(1000);
        Ok(entries)
    }

    async fn leave_waitlist(&self, id: WaitlistEntryId) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let eid = to_bson_id(id.object_id());
        // Waiting without an offer, it counts among those waiting; with one, no more. An offer
        // made between the two updates is found by the second.
        for (matches, update) in [
            (
                doc! {"waitlist": {"$elemMatch": {"id": eid, "offer": {"$exists": false}}}},
                doc! {"$pull": {"waitlist": {"id": eid}}, "$inc": {"waiting": -1}},
            ),
            (
                doc! {"waitlist": {"$elemMatch": {"id": eid, "offer": {"$exists": true}}}},
                doc! {"$pull": {"waitlist": {"id": eid}}},
            ),
        ] {
            let left = self
                .inventory
                .update_one(matches, update)
                .await
                .map_err(map_error)?;
            if left.modified_count == 1 {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn offer_to_waitlists(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<WaitlistEntry>, RepositoryError> {
        self.store.ensure_initialised()?;
        let at = to_bson_date(now);
        let lists: Vec<InventoryDoc> = self
            .inventory
            .find(doc! {"$or": [
                {"waiting": {"$gt": 0}},
                {"waitlist.offer.expires_at": {"$lte": at}},
            ]})
            .limit(1000)
            .await
            .map_err(map_error)?
            .try_collect()
            .await
            .map_err(map_error)?;
        let mut offered = Vec::new();
        for inventory in lists {
            let event = inventory.id;
            let lapsed: Vec<_> = inventory
                .waitlist
                .iter()
                .filter(|entry| entry.offer.as_ref().is_some_and(|o| o.expires_at <= at))
                .map(|entry| entry.id)
                .collect();
            if !lapsed.is_empty() {
                self.inventory
                    .update_one(
                        doc! {"_id": event},
                        doc! {"$pull": {"waitlist": {"id": {"$in": lapsed}}}},
                    )
                    .await
                    .map_err(map_error)?;
            }
            let mut current = Some(inventory);
            // Each pass offers the first entry still waiting, or stops: at most one pass per entry,
            // and a few more for reads that another replica's offer made stale.
            for _ in 0..1000 {
                let Some(inventory) = current.take() else {
                    break;
                };
                if inventory.cancelled_at.is_some() {
                    break;
                }
                let Some(head) = inventory.waitlist.iter().find(|e| e.offer.is_none()) else {
                    break;
                };
                if head.seats > inventory.remaining {
                    break;
                }
                let entry = waitlist_entries(event, vec![head.clone()])?
                    .pop()
                    .ok_or_else(|| RepositoryError::Unexpected(Cause::msg("entry lost")))?;
                let booking = Booking {
                    id: BookingId::generate(),
                    event_id: entry.event_id,
                    user_id: entry.user_id.clone(),
                    seats: entry.seats,
                    booked_at: now,
                    cancelled_at: None,
                    cancel_reason: None,
                };
                let hold =
                    to_bson_value(&HoldDoc::new(&booking, &new_token(), now, Some(expires_at)))?;
                let offer = doc! {"hold": to_bson_id(booking.id.object_id()), "expires_at": to_bson_date(expires_at)};
                // An `update` command, and a read after it: the MongoDB-wire test server refuses the
                // positional operator in `findAndModify` (scripts/repro/secantus_positional_find_and_modify.py).
                let made = self
                    .inventory
                    .update_one(
                        doc! {
                            "_id": event,
                            "cancelled_at": {"$exists": false},
                            "remaining": {"$gte": head.seats},
                            "waitlist": {"$elemMatch": {"id": head.id, "offer": {"$exists": false}}},
                        },
                        doc! {
                            "$set": {"waitlist.$.offer": offer},
                            "$inc": {"remaining": -head.seats, "waiting": -1},
                            "$push": {"buyer_holds": hold},
                        },
                    )
                    .await
                    .map_err(map_error)?;
                if made.modified_count == 1 {
                    offered.push(WaitlistEntry {
                        offer: Some(WaitlistOffer {
                            hold_id: booking.id,
                            expires_at,
                        }),
                        place: None,
                        ..entry
                    });
                }
                // The next entry, after this offer (or after another replica's, or seats gone).
                current = self
                    .inventory
                    .find_one(doc! {"_id": event})
                    .await
                    .map_err(map_error)?;
            }
        }
        Ok(offered)
    }

    async fn lapsed_holds(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SeatHold>, RepositoryError> {
        self.store.ensure_initialised()?;
        let now = to_bson_date(now);
        let mut lapsed = self
            .holds_where(
                doc! {"buyer_holds.expires_at": {"$lte": now}},
                |inventory| inventory.buyer_holds,
                |hold| hold.expires_at().is_some_and(|at| at <= now),
            )
            .await?;
        lapsed.sort_by_key(|hold| hold.expires_at);
        lapsed.truncate(1000);
        Ok(lapsed)
    }

    async fn store_held_booking(
        &self,
        hold: &SeatHold,
        announce: &OutboxMessage,
    ) -> Result<Settled, RepositoryError> {
        self.store.ensure_initialised()?;
        crate::unclaimed_guard(hold)?;
        let event = to_bson_id(hold.booking.event_id.object_id());
        let bid = to_bson_id(hold.booking.id.object_id());
        let this_hold = doc! {"booking": bid, "attempt": &hold.attempt};
        let mut document = BookingDoc::from(&hold.booking);
        document.hold = Some(hold.attempt.clone());
        document.outbox.push(OutboxDoc::from(announce));
        match self.bookings.insert_one(document).await.map_err(map_error) {
            Ok(_) => {}
            // The id is stored: by this hold (an insert applied, then retried by the driver after a
            // lost reply), or by another attempt, whose hold the seats were taken under instead.
            Err(RepositoryError::Conflict(cause)) => {
                let stored = self
                    .bookings
                    .find_one(doc! {"_id": bid})
                    .await
                    .map_err(map_error)?
                    .ok_or(RepositoryError::Conflict(cause))?;
                if stored.hold.as_deref() != Some(hold.attempt.as_str()) {
                    self.inventory
                        .update_one(
                            doc! {"_id": event, "holds": {"$elemMatch": this_hold.clone()}},
                            doc! {
                                "$inc": {"remaining": i64::from(hold.booking.seats.get())},
                                "$pull": {"holds": this_hold},
                            },
                        )
                        .await
                        .map_err(map_error)?;
                    return Ok(Settled::AlreadyStored(Booking::try_from(stored)?));
                }
            }
            Err(error) => return Err(error),
        }
        // The seats belong to the stored booking now. A crash before this leaves the hold for the
        // reconciler, which finds the booking stored under it and only releases it.
        self.inventory
            .update_one(doc! {"_id": event}, doc! {"$pull": {"holds": this_hold}})
            .await
            .map_err(map_error)?;
        Ok(Settled::Stored(hold.booking.clone()))
    }

    async fn stale_holds(
        &self,
        held_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SeatHold>, RepositoryError> {
        self.store.ensure_initialised()?;
        let before = to_bson_date(held_before);
        let mut stale = self
            .holds_where(
                doc! {"holds.held_at": {"$lt": before}},
                |inventory| inventory.holds,
                |hold| hold.held_at() < before,
            )
            .await?;
        stale.sort_by_key(|hold| hold.held_at);
        stale.truncate(1000);
        Ok(stale)
    }

    async fn cancel_booking(
        &self,
        id: BookingId,
        cancelled_at: chrono::DateTime<chrono::Utc>,
        announce: &OutboxMessage,
    ) -> Result<Cancellation, RepositoryError> {
        self.store.ensure_initialised()?;
        let bid = to_bson_id(id.object_id());
        let outbox = outbox_entry(announce)?;
        // 1. Mark it cancelled, with its message, unless it already is.
        let marked = self
            .bookings
            .find_one_and_update(
                doc! {"_id": bid, "cancelled_at": {"$exists": false}},
                doc! {
                    "$set": {"cancelled_at": to_bson_date(cancelled_at), "returning": true},
                    "$push": {"outbox": outbox},
                },
            )
            .return_document(ReturnDocument::After)
            .await
            .map_err(map_error)?;
        let (document, now) = match marked {
            Some(document) => (document, true),
            None => match self
                .bookings
                .find_one(doc! {"_id": bid})
                .await
                .map_err(map_error)?
            {
                Some(document) => (document, false),
                None => return Ok(Cancellation::NotFound),
            },
        };
        // 2. Give the seats back, once per booking. The flag stays until the reconciliation clears
        //    it with others in one write; a crash before this write leaves the seats to it too.
        if document.returning {
            let booking = Booking::try_from(document)?;
            self.give_seats_back(&booking).await?;
            return Ok(if now {
                Cancellation::Cancelled(booking)
            } else {
                Cancellation::AlreadyCancelled(booking)
            });
        }
        Ok(Cancellation::AlreadyCancelled(Booking::try_from(document)?))
    }

    async fn finish_seat_returns(
        &self,
        cancelled_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, RepositoryError> {
        self.store.ensure_initialised()?;
        let flagged: Vec<BookingDoc> = self
            .bookings
            .find(doc! {"returning": true, "cancelled_at": {"$lt": to_bson_date(cancelled_before)}})
            .limit(1000)
            .await
            .map_err(map_error)?
            .try_collect()
            .await
            .map_err(map_error)?;
        if flagged.is_empty() {
            return Ok(0);
        }
        let mut ids = Vec::with_capacity(flagged.len());
        let mut returns = Vec::with_capacity(flagged.len());
        for document in flagged {
            let booking = Booking::try_from(document)?;
            ids.push(to_bson_id(booking.id.object_id()));
            let (q, u) = seat_return(&booking);
            returns.push(doc! {"q": q, "u": u});
        }
        // Every return in one `update` command (a statement per booking): most were finished by
        // their cancellation and match nothing; the ones a crash interrupted are finished now.
        let reply = self
            .store
            .database()
            .run_command(doc! {"update": INVENTORY, "updates": returns, "ordered": false})
            .await
            .map_err(map_error)?;
        if let Some(errors) = reply
            .get_array("writeErrors")
            .ok()
            .filter(|e| !e.is_empty())
        {
            return Err(RepositoryError::Unexpected(Cause::msg(format!(
                "giving back the seats of cancelled bookings failed: {errors:?}"
            ))));
        }
        let finished = match reply.get("nModified") {
            Some(Bson::Int32(n)) => usize::try_from(*n).unwrap_or(0),
            Some(Bson::Int64(n)) => usize::try_from(*n).unwrap_or(0),
            _ => 0,
        };
        // Every one of them is finished now: their flags go, in one write.
        self.bookings
            .update_many(
                doc! {"_id": {"$in": ids}},
                doc! {"$unset": {"returning": ""}},
            )
            .await
            .map_err(map_error)?;
        Ok(finished)
    }

    async fn booking(&self, id: BookingId) -> Result<Option<Booking>, RepositoryError> {
        self.store.ensure_initialised()?;
        self.bookings
            .find_one(doc! {"_id": to_bson_id(id.object_id())})
            .await
            .map_err(map_error)?
            .map(Booking::try_from)
            .transpose()
    }

    async fn bookings_for_event(
        &self,
        event_id: EventId,
        page: PageRequest,
    ) -> Result<Vec<Booking>, RepositoryError> {
        self.store.ensure_initialised()?;
        let filter = doc! {"event_id": to_bson_id(event_id.object_id())};
        find_page(&self.bookings, filter, page).await
    }

    async fn bookings_for_user(
        &self,
        user_id: &UserId,
        page: PageRequest,
    ) -> Result<Vec<Booking>, RepositoryError> {
        self.store.ensure_initialised()?;
        find_page(&self.bookings, doc! {"user_id": user_id.as_str()}, page).await
    }
}
