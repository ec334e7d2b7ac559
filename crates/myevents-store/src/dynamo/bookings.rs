//! The booking service's repository on DynamoDB: seat inventory with its waitlist in one item per
//! event (`inventory#<event id>`, see [`InventoryItem`]), seat holds (`hold#<booking id>`, see
//! [`HoldItem`]) and bookings (`booking#<id>`) in items of their own, and pointer items from a
//! waitlist entry's id (`waitlist#<id>`) to the event, which also file entries by buyer.
//!
//! Placing a booking is two transactions, as on the other stores: the seats are taken by a
//! conditional update of the inventory (`remaining >= :seats`, nobody waiting, not cancelled) with
//! the hold's item; then the booking, the hold's removal, the inventory's count of reservation
//! records and the outbox message are one `TransactWriteItems`. A cancellation, with its seats' return and its message, is one
//! transaction as well, so no return is ever left half done. Writes that read the inventory
//! first (waitlists, offers, releases of an event's cancellation) are conditional on its `version`
//! and retried when another write came first.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::TransactWriteItem;
use myevents_domain::booking::{Booking, SeatInventory, UserId, WaitlistEntry};
use myevents_domain::id::{BookingId, EventId, WaitlistEntryId};
use myevents_domain::messages::OutboxMessage;
use myevents_domain::seats::SeatCount;

use super::items::{
    BUYER_HOLDS, BookingItem, HoldFields, HoldItem, InventoryItem, RESERVATIONS, UNSETTLED,
    WAITLISTS, WaitlistFields, WaitlistPointer, booking_key, hold_key, inventory_key, millis,
    waitlist_key,
};
use super::outbox::stage;
use super::{DynamoStore, Expr, Index, Range, TxError, from_item, n, number, s, to_item};
use crate::idempotency::new_token;
use crate::{
    BookingRepository, Cancellation, Cause, EventBookingsCancelled, InventoryChange,
    InventoryChanged, InventorySnapshot, JoinWaitlistError, PageRequest, PlaceBookingError,
    RepositoryError, SeatHold, Settled, now_millis,
};

/// How often a write that lost to another one is tried again before the caller gets
/// `Unavailable`.
const ATTEMPTS: usize = 20;

/// Most offers (and most lapsed entries dropped) per event in one transaction: DynamoDB takes at
/// most 100 writes in one.
const OFFERS_PER_WRITE: usize = 40;

/// Most items one answer lists.
const LISTED: usize = 1000;

/// The attributes of an inventory item without its waitlist (which may hold hundreds of entries:
/// reading them costs capacity in proportion).
const INVENTORY_FIELDS: &str = "#pk, #event_id, #name, #capacity, #remaining, #organiser, \
     #revision, #cancelled, #settled, #waiting, #reserved, #version";

/// What a seat hold's write needs to know of its event's inventory: read without its waitlist.
struct SeatsView {
    remaining: i64,
    waiting: i64,
    cancelled: bool,
}

impl SeatsView {
    fn of(item: &super::Item) -> Result<Self, RepositoryError> {
        Ok(Self {
            remaining: number(item, "remaining")?,
            waiting: number(item, "waiting")?,
            cancelled: item.contains_key("cancelled"),
        })
    }

    fn remaining(&self) -> SeatCount {
        SeatCount::new(u32::try_from(self.remaining.max(0)).unwrap_or(u32::MAX))
    }
}

fn contended(what: &str) -> RepositoryError {
    RepositoryError::Unavailable(Cause::msg(format!(
        "{what}: other writes to the same event kept coming first ({ATTEMPTS} attempts)"
    )))
}

/// Seat inventory, seat holds, waitlists and bookings in one DynamoDB table.
#[derive(Debug, Clone)]
pub struct DynamoBookingRepository {
    store: DynamoStore,
}

impl DynamoBookingRepository {
    /// The repository in `store`'s table.
    pub fn new(store: &DynamoStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    async fn load(&self, event_id: EventId) -> Result<Option<InventoryItem>, RepositoryError> {
        self.store.get_as(&inventory_key(event_id)).await
    }

    async fn load_key(&self, event_id: &str) -> Result<Option<InventoryItem>, RepositoryError> {
        self.store.get_as(&format!("inventory#{event_id}")).await
    }

    /// The seats of `event_id`'s inventory (without its waitlist); `None` for an unknown event.
    async fn seats_view(&self, event_id: &str) -> Result<Option<SeatsView>, RepositoryError> {
        let Some(item) = self
            .store
            .get_projected(
                &format!("inventory#{event_id}"),
                "#pk, #remaining, #waiting, #cancelled",
                &Expr::new(),
            )
            .await?
        else {
            return Ok(None);
        };
        SeatsView::of(&item).map(Some)
    }

    /// The seats that remain of `event_id` (none for an unknown event).
    async fn remaining(&self, event_id: &str) -> Result<SeatCount, RepositoryError> {
        Ok(self
            .seats_view(event_id)
            .await?
            .map_or(SeatCount::new(0), |view| view.remaining()))
    }

    /// `next` written over `read`, only when the stored item is still at `read`'s version.
    fn rewrite(
        &self,
        read: &InventoryItem,
        mut next: InventoryItem,
    ) -> Result<TransactWriteItem, RepositoryError> {
        next.version = read.version + 1;
        next.file();
        self.store.put(
            to_item(&next)?,
            Some("#version = :version"),
            &Expr::new().value(":version", n(read.version)),
        )
    }

    fn put_new(&self, item: &impl serde::Serialize) -> Result<TransactWriteItem, RepositoryError> {
        self.store.put(
            to_item(item)?,
            Some("attribute_not_exists(#pk)"),
            &Expr::new(),
        )
    }

    /// The holds filed in `gsi1` partition `partition` before `before` that `keep` accepts, in the
    /// index's order, each with the seats that remain of its event.
    async fn filed_holds(
        &self,
        partition: &str,
        before: &str,
        keep: impl Fn(&HoldFields) -> bool,
    ) -> Result<Vec<SeatHold>, RepositoryError> {
        let items = self
            .store
            .query(Index::G1, partition, Range::Before(before), LISTED)
            .await?;
        let mut remaining: HashMap<String, SeatCount> = HashMap::new();
        let mut holds = Vec::new();
        for item in items {
            let item: HoldItem = from_item(item)?;
            if !keep(&item.hold) {
                continue;
            }
            let left = match remaining.get(&item.event_id) {
                Some(left) => *left,
                None => {
                    let left = self.remaining(&item.event_id).await?;
                    remaining.insert(item.event_id.clone(), left);
                    left
                }
            };
            holds.push(item.hold.into_hold(left, false)?);
        }
        Ok(holds)
    }

    /// Gives the seats of `hold` back and removes it, when it is still recorded under its attempt
    /// (and `condition` holds for it); `false` when it is not.
    async fn give_back(
        &self,
        hold: &SeatHold,
        condition: &str,
        expr: Expr,
    ) -> Result<bool, RepositoryError> {
        let reservation = i64::from(hold.expires_at.is_none());
        let remove = self.store.delete(
            &hold_key(hold.booking.id),
            Some(&format!("#attempt = :attempt{condition}")),
            &expr.value(":attempt", s(&hold.attempt)),
        )?;
        let seats_back = self.store.update(
            &inventory_key(hold.booking.event_id),
            "SET #remaining = #remaining + :seats, #reserved = #reserved - :reservation \
             ADD #version :one",
            Some("attribute_exists(#pk)"),
            &Expr::new()
                .value(":seats", n(hold.booking.seats.get()))
                .value(":reservation", n(reservation))
                .value(":one", n(1)),
        )?;
        match self.store.transact(vec![remove.clone(), seats_back]).await {
            Ok(()) => Ok(true),
            Err(error) if error.refused(0) => Ok(false),
            // Its event is gone: the hold goes alone.
            Err(error) if error.refused(1) => match self.store.transact(vec![remove]).await {
                Ok(()) => Ok(true),
                Err(error) if error.refused(0) => Ok(false),
                Err(error) => Err(error.into_store("removing a seat hold")),
            },
            Err(error) => Err(error.into_store("giving seats back")),
        }
    }

    /// One page of `gsi1`/`gsi2` partition `partition` of bookings.
    async fn bookings_page(
        &self,
        index: Index,
        partition: &str,
        page: PageRequest,
    ) -> Result<Vec<Booking>, RepositoryError> {
        let after = page.after.map(|id| id.to_string());
        let range = after.as_deref().map_or(Range::All, Range::After);
        self.store
            .query(index, partition, range, page.limit)
            .await?
            .into_iter()
            .map(|item| from_item::<BookingItem>(item)?.booking.into_domain())
            .collect()
    }
}

#[async_trait]
impl BookingRepository for DynamoBookingRepository {
    async fn add_inventory(&self, inventory: &SeatInventory) -> Result<bool, RepositoryError> {
        self.store
            .put_if(
                to_item(&InventoryItem::new(inventory))?,
                "attribute_not_exists(#pk)",
                &Expr::new(),
            )
            .await
    }

    async fn change_inventory(
        &self,
        event_id: EventId,
        revision: u64,
        change: &InventoryChange,
    ) -> Result<InventoryChanged, RepositoryError> {
        for _ in 0..ATTEMPTS {
            let read = self.load(event_id).await?;
            let mut next = read.clone().unwrap_or_else(|| {
                InventoryItem::new(&SeatInventory::new(
                    event_id,
                    String::new(),
                    SeatCount::new(0),
                ))
            });
            let mut inventory = next.inventory()?;
            if inventory.revision >= revision {
                return Ok(InventoryChanged::Stale(inventory));
            }
            change.apply(&mut inventory, revision);
            next.set_inventory(&inventory);
            let write = match &read {
                Some(read) => self.rewrite(read, next)?,
                None => self.put_new(&next)?,
            };
            match self.store.transact(vec![write]).await {
                Ok(()) => return Ok(InventoryChanged::Applied(inventory)),
                Err(TxError::Refused(..)) => {}
                Err(TxError::Store(error)) => return Err(error),
            }
        }
        Err(contended("changing an inventory"))
    }

    async fn cancel_event_bookings(
        &self,
        event_id: EventId,
        cancelled_at: chrono::DateTime<chrono::Utc>,
        reason: &str,
        announce: &(dyn for<'b> Fn(&'b Booking) -> OutboxMessage + Send + Sync),
    ) -> Result<EventBookingsCancelled, RepositoryError> {
        let partition = format!("event#{event_id}");
        let mut cancelled = Vec::new();
        let mut after: Option<String> = None;
        let mut complete = false;
        while cancelled.len() < LISTED {
            let range = after.as_deref().map_or(Range::All, Range::After);
            let page = self
                .store
                .query(Index::G1, &partition, range, LISTED)
                .await?;
            if page.is_empty() {
                complete = true;
                break;
            }
            for item in page {
                let stored: BookingItem = from_item(item)?;
                after = Some(stored.booking.id.clone());
                if stored.booking.cancelled_at.is_some() || cancelled.len() >= LISTED {
                    continue;
                }
                let mut booking = stored.booking.into_domain()?;
                booking.cancelled_at = Some(cancelled_at);
                booking.cancel_reason = Some(reason.to_owned());
                let writes = vec![
                    self.store.update(
                        &booking_key(booking.id),
                        "SET #cancelled_at = :at, #cancel_reason = :reason",
                        Some("attribute_not_exists(#cancelled_at)"),
                        &Expr::new()
                            .value(":at", n(millis(cancelled_at)))
                            .value(":reason", s(reason)),
                    )?,
                    stage(&self.store, &announce(&booking))?,
                ];
                match self.store.transact(writes).await {
                    Ok(()) => cancelled.push(booking),
                    // Cancelled meanwhile by someone else.
                    Err(error) if error.refused(0) => {}
                    Err(error) => return Err(error.into_store("cancelling a booking")),
                }
            }
        }
        let mut settled = false;
        if complete {
            for attempt in 0..=ATTEMPTS {
                if attempt == ATTEMPTS {
                    return Err(contended("settling a cancelled event"));
                }
                let Some(read) = self.load(event_id).await? else {
                    break;
                };
                // A reservation record can still become a booking; a buyer's hold cannot.
                let held = read.reserved > 0;
                settled = !held && read.cancelled.is_some();
                if !settled || read.settled {
                    break;
                }
                let mut next = read.clone();
                next.settled = true;
                match self.store.transact(vec![self.rewrite(&read, next)?]).await {
                    Ok(()) => break,
                    Err(TxError::Refused(..)) => {}
                    Err(TxError::Store(error)) => return Err(error),
                }
            }
        }
        Ok(EventBookingsCancelled { cancelled, settled })
    }

    async fn unsettled_cancelled_events(&self) -> Result<Vec<SeatInventory>, RepositoryError> {
        self.store
            .query(Index::G1, UNSETTLED, Range::All, LISTED)
            .await?
            .into_iter()
            .map(|item| from_item::<InventoryItem>(item)?.inventory())
            .collect()
    }

    async fn inventory_snapshot(
        &self,
        event_id: EventId,
    ) -> Result<Option<InventorySnapshot>, RepositoryError> {
        let Some(item) = self.load(event_id).await? else {
            return Ok(None);
        };
        let inventory = item.inventory()?;
        let mut holds = self
            .store
            .query(
                Index::G2,
                &format!("holds#{event_id}"),
                Range::All,
                usize::MAX,
            )
            .await?
            .into_iter()
            .map(|hold| {
                from_item::<HoldItem>(hold)?
                    .hold
                    .into_hold(inventory.remaining, false)
            })
            .collect::<Result<Vec<_>, _>>()?;
        holds.sort_by_key(|h| (h.held_at, h.booking.id));
        Ok(Some(InventorySnapshot {
            inventory,
            holds,
            waitlist: item.entries()?,
        }))
    }

    async fn inventory(&self, event_id: EventId) -> Result<Option<SeatInventory>, RepositoryError> {
        self.store
            .get_projected(&inventory_key(event_id), INVENTORY_FIELDS, &Expr::new())
            .await?
            .map(|item| from_item::<InventoryItem>(item)?.inventory())
            .transpose()
    }

    async fn hold_seats(
        &self,
        booking: &Booking,
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<SeatHold, PlaceBookingError> {
        let hold = HoldFields::new(booking, &new_token(), now_millis(), expires_at);
        let event = hold.booking.event_id.clone();
        let seats = i64::from(booking.seats.get());
        let item = to_item(&HoldItem::of(hold.clone()))?;
        for _ in 0..ATTEMPTS {
            let writes =
                vec![
                self.store.update_or_old(
                    &inventory_key(booking.event_id),
                    "SET #remaining = #remaining - :seats, #reserved = #reserved + :reservation \
                     ADD #version :one",
                    "attribute_exists(#pk) AND #remaining >= :seats AND #waiting = :zero \
                     AND attribute_not_exists(#cancelled)",
                    &Expr::new()
                        .value(":seats", n(seats))
                        .value(":reservation", n(i64::from(expires_at.is_none())))
                        .value(":one", n(1))
                        .value(":zero", n(0)),
                )?,
                self.store
                    .put(item.clone(), Some("attribute_not_exists(#pk)"), &Expr::new())?,
            ];
            match self.store.transact(writes).await {
                Ok(()) => {
                    // The seats that remain right after (or a little later, under concurrency).
                    let remaining = self.remaining(&event).await?;
                    return Ok(hold.into_hold(remaining, true)?);
                }
                Err(error @ TxError::Refused(..)) => {
                    // The inventory as the write found it: with the refusal when its condition
                    // failed, else read.
                    let view = match error.old_item(0) {
                        Some(item) => Some(SeatsView::of(item)?),
                        None if error.refused(0) => None,
                        None => self.seats_view(&event).await?,
                    };
                    let Some(view) = view else {
                        return Err(PlaceBookingError::EventNotFound);
                    };
                    if view.cancelled {
                        return Err(PlaceBookingError::EventCancelled);
                    }
                    if error.refused(1) {
                        let earlier = self.store.get_as::<HoldItem>(&hold_key(booking.id)).await?;
                        if let Some(earlier) = earlier {
                            return Ok(earlier.hold.into_hold(view.remaining(), false)?);
                        }
                    }
                    if view.waiting > 0 || view.remaining < seats {
                        return Err(PlaceBookingError::SoldOut {
                            remaining: view.remaining(),
                        });
                    }
                    // The hold settled between the write and the read: try again.
                }
                Err(TxError::Store(error)) => return Err(error.into()),
            }
        }
        Err(contended("holding seats").into())
    }

    async fn seat_hold(&self, id: BookingId) -> Result<Option<SeatHold>, RepositoryError> {
        let Some(item) = self.store.get_as::<HoldItem>(&hold_key(id)).await? else {
            return Ok(None);
        };
        let remaining = self.remaining(&item.event_id).await?;
        Ok(Some(item.hold.into_hold(remaining, false)?))
    }

    async fn claim_hold(
        &self,
        hold: &SeatHold,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<bool, RepositoryError> {
        let claimed = HoldItem::of(HoldFields::new(&hold.booking, &hold.attempt, now, None));
        let writes = vec![
            // Now a reservation record: filed by the time it was claimed, no lapse.
            self.store.update(
                &hold_key(hold.booking.id),
                "SET #held_at = :now, #g1pk = :filed, #g1sk = :at REMOVE #expires_at",
                Some("#attempt = :attempt AND #expires_at > :now"),
                &Expr::new()
                    .value(":now", n(millis(now)))
                    .value(":filed", s(claimed.g1pk))
                    .value(":at", s(claimed.g1sk))
                    .value(":attempt", s(&hold.attempt)),
            )?,
            self.store.update(
                &inventory_key(hold.booking.event_id),
                "ADD #reserved :one, #version :one",
                Some("attribute_exists(#pk) AND attribute_not_exists(#cancelled)"),
                &Expr::new().value(":one", n(1)),
            )?,
        ];
        match self.store.transact(writes).await {
            Ok(()) => Ok(true),
            Err(TxError::Refused(..)) => Ok(false),
            Err(TxError::Store(error)) => Err(error),
        }
    }

    async fn release_hold(
        &self,
        hold: &SeatHold,
        lapsed_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<bool, RepositoryError> {
        match lapsed_at {
            None => {
                self.give_back(hold, " AND attribute_exists(#expires_at)", Expr::new())
                    .await
            }
            Some(lapsed) => {
                self.give_back(
                    hold,
                    " AND #expires_at <= :lapsed",
                    Expr::new().value(":lapsed", n(millis(lapsed))),
                )
                .await
            }
        }
    }

    async fn join_waitlist(
        &self,
        entry: &WaitlistEntry,
    ) -> Result<WaitlistEntry, JoinWaitlistError> {
        for _ in 0..ATTEMPTS {
            if let Some(found) = self.waitlist_entry(entry.id).await? {
                return Ok(found);
            }
            let Some(read) = self.load(entry.event_id).await? else {
                return Err(JoinWaitlistError::EventNotFound);
            };
            if read.cancelled.is_some() {
                return Err(JoinWaitlistError::EventCancelled);
            }
            if read.remaining >= i64::from(entry.seats.get()) && read.waiting == 0 {
                return Err(JoinWaitlistError::SeatsAvailable {
                    remaining: read.remaining(),
                });
            }
            let waiting = WaitlistEntry {
                offer: None,
                place: None,
                ..entry.clone()
            };
            let mut next = read.clone();
            next.waitlist.push(WaitlistFields::from(&waiting));
            let writes = vec![
                self.rewrite(&read, next.clone())?,
                self.put_new(&WaitlistPointer::of(&waiting))?,
            ];
            match self.store.transact(writes).await {
                Ok(()) => {
                    next.file();
                    return next
                        .entries()?
                        .into_iter()
                        .find(|e| e.id == entry.id)
                        .ok_or_else(|| {
                            RepositoryError::Unexpected(Cause::msg("waitlist entry lost")).into()
                        });
                }
                Err(TxError::Refused(..)) => {}
                Err(TxError::Store(error)) => return Err(error.into()),
            }
        }
        Err(contended("joining a waitlist").into())
    }

    async fn waitlist_entry(
        &self,
        id: WaitlistEntryId,
    ) -> Result<Option<WaitlistEntry>, RepositoryError> {
        let Some(pointer) = self
            .store
            .get_as::<WaitlistPointer>(&waitlist_key(id))
            .await?
        else {
            return Ok(None);
        };
        let Some(item) = self.load_key(&pointer.event_id).await? else {
            return Ok(None);
        };
        Ok(item.entries()?.into_iter().find(|e| e.id == id))
    }

    async fn waitlist_of_user(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<WaitlistEntry>, RepositoryError> {
        let pointers = self
            .store
            .query(
                Index::G2,
                &format!("waiting#{}", user_id.as_str()),
                Range::All,
                LISTED,
            )
            .await?;
        let mut lists: HashMap<String, Vec<WaitlistEntry>> = HashMap::new();
        let mut entries = Vec::new();
        for pointer in pointers {
            let pointer: WaitlistPointer = from_item(pointer)?;
            if !lists.contains_key(&pointer.event_id) {
                let list = match self.load_key(&pointer.event_id).await? {
                    Some(item) => item.entries()?,
                    None => Vec::new(),
                };
                lists.insert(pointer.event_id.clone(), list);
            }
            let id = pointer.pk.trim_start_matches("waitlist#");
            if let Some(entry) = lists
                .get(&pointer.event_id)
                .and_then(|list| list.iter().find(|e| e.id.to_string() == id))
            {
                entries.push(entry.clone());
            }
        }
        entries.sort_by_key(|entry| (entry.joined_at, entry.id));
        Ok(entries)
    }

    async fn leave_waitlist(&self, id: WaitlistEntryId) -> Result<bool, RepositoryError> {
        for _ in 0..ATTEMPTS {
            let Some(pointer) = self
                .store
                .get_as::<WaitlistPointer>(&waitlist_key(id))
                .await?
            else {
                return Ok(false);
            };
            let drop_pointer = self.store.delete(&waitlist_key(id), None, &Expr::new())?;
            let read = self.load_key(&pointer.event_id).await?;
            let Some(read) = read.filter(|r| r.waitlist.iter().any(|e| e.id == id.to_string()))
            else {
                // Left before, or dropped with a lapsed offer: only the pointer remained.
                self.store
                    .transact(vec![drop_pointer])
                    .await
                    .map_err(|e| e.into_store("removing a waitlist pointer"))?;
                return Ok(false);
            };
            let mut next = read.clone();
            next.waitlist.retain(|e| e.id != id.to_string());
            match self
                .store
                .transact(vec![self.rewrite(&read, next)?, drop_pointer])
                .await
            {
                Ok(()) => return Ok(true),
                Err(TxError::Refused(..)) => {}
                Err(TxError::Store(error)) => return Err(error),
            }
        }
        Err(contended("leaving a waitlist"))
    }

    async fn offer_to_waitlists(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        expires_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<WaitlistEntry>, RepositoryError> {
        let listed = self
            .store
            .query(Index::G2, WAITLISTS, Range::All, LISTED)
            .await?;
        let mut offered = Vec::new();
        for listed in listed {
            let event: InventoryItem = from_item(listed)?;
            for _ in 0..ATTEMPTS {
                let Some(read) = self.load_key(&event.event_id).await? else {
                    break;
                };
                let event_id = read.inventory()?.event_id;
                let mut next = read.clone();
                let mut writes = Vec::new();
                // Entries whose offer lapsed leave the list (a few dozen per transaction).
                let mut dropped = 0;
                next.waitlist.retain(|e| {
                    let lapsed = e.offer_expires_at.is_some_and(|at| at <= millis(now));
                    if lapsed && dropped < OFFERS_PER_WRITE {
                        dropped += 1;
                        return false;
                    }
                    true
                });
                for gone in read.waitlist.iter().filter(|e| !next.waitlist.contains(e)) {
                    writes.push(self.store.delete(
                        &format!("waitlist#{}", gone.id),
                        None,
                        &Expr::new(),
                    )?);
                }
                let mut made = Vec::new();
                if next.cancelled.is_none() {
                    for entry in next.waitlist.iter_mut().filter(|e| e.offer_hold.is_none()) {
                        if made.len() >= OFFERS_PER_WRITE || next.remaining < entry.seats {
                            break;
                        }
                        next.remaining -= entry.seats;
                        let mut waiting = entry.clone().into_entry(event_id)?;
                        let booking = Booking {
                            id: BookingId::generate(),
                            event_id,
                            user_id: waiting.user_id.clone(),
                            seats: waiting.seats,
                            booked_at: now,
                            cancelled_at: None,
                            cancel_reason: None,
                        };
                        let hold =
                            HoldFields::new(&booking, &new_token(), now_millis(), Some(expires_at));
                        entry.offer_hold = Some(booking.id.to_string());
                        entry.offer_expires_at = Some(millis(expires_at));
                        writes.push(self.put_new(&HoldItem::of(hold))?);
                        waiting.offer = Some(myevents_domain::booking::WaitlistOffer {
                            hold_id: booking.id,
                            expires_at,
                        });
                        made.push(waiting);
                    }
                }
                if writes.is_empty() {
                    break;
                }
                writes.insert(0, self.rewrite(&read, next)?);
                match self.store.transact(writes).await {
                    Ok(()) => {
                        offered.extend(made);
                        break;
                    }
                    Err(error) if error.refused(0) => {}
                    Err(error) => return Err(error.into_store("offering seats to a waitlist")),
                }
            }
        }
        Ok(offered)
    }

    async fn lapsed_holds(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SeatHold>, RepositoryError> {
        let now = millis(now);
        let mut holds = self
            .filed_holds(BUYER_HOLDS, &format!("{:015}~", now.max(0)), |h| {
                h.expires_at.is_some_and(|at| at <= now)
            })
            .await?;
        holds.sort_by_key(|h| h.expires_at);
        Ok(holds)
    }

    async fn store_held_booking(
        &self,
        hold: &SeatHold,
        announce: &OutboxMessage,
    ) -> Result<Settled, RepositoryError> {
        crate::unclaimed_guard(hold)?;
        let item = BookingItem::new(&hold.booking, &hold.attempt);
        for _ in 0..ATTEMPTS {
            let writes = vec![
                self.put_new(&item)?,
                self.store.delete(
                    &hold_key(hold.booking.id),
                    Some("#attempt = :attempt AND attribute_not_exists(#expires_at)"),
                    &Expr::new().value(":attempt", s(&hold.attempt)),
                )?,
                // One reservation record fewer; no condition, so that an event deleted meanwhile
                // does not keep the booking from being stored.
                self.store.update(
                    &inventory_key(hold.booking.event_id),
                    "ADD #reserved :minus, #version :one",
                    Some("attribute_exists(#pk)"),
                    &Expr::new().value(":minus", n(-1)).value(":one", n(1)),
                )?,
                stage(&self.store, announce)?,
            ];
            match self.store.transact(writes).await {
                Ok(()) => return Ok(Settled::Stored(hold.booking.clone())),
                Err(error) if error.refused(0) => {
                    let Some(stored) = self
                        .store
                        .get_as::<BookingItem>(&booking_key(hold.booking.id))
                        .await?
                    else {
                        continue;
                    };
                    let booking = stored.booking.into_domain()?;
                    if stored.attempt == hold.attempt {
                        return Ok(Settled::Stored(booking));
                    }
                    self.give_back(hold, "", Expr::new()).await?;
                    return Ok(Settled::AlreadyStored(booking));
                }
                Err(error) if error.refused(1) || error.refused(2) => {
                    // No hold under this attempt (any more), or no inventory: the booking alone,
                    // as the other stores do.
                    let writes = vec![self.put_new(&item)?, stage(&self.store, announce)?];
                    match self.store.transact(writes).await {
                        Ok(()) => return Ok(Settled::Stored(hold.booking.clone())),
                        Err(TxError::Refused(..)) => {}
                        Err(TxError::Store(error)) => return Err(error),
                    }
                }
                Err(error) => return Err(error.into_store("storing a booking")),
            }
        }
        Err(contended("storing a booking"))
    }

    async fn stale_holds(
        &self,
        held_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<SeatHold>, RepositoryError> {
        let before = millis(held_before);
        self.filed_holds(RESERVATIONS, &format!("{:015}", before.max(0)), |h| {
            h.expires_at.is_none() && h.held_at < before
        })
        .await
    }

    async fn cancel_booking(
        &self,
        id: BookingId,
        cancelled_at: chrono::DateTime<chrono::Utc>,
        announce: &OutboxMessage,
    ) -> Result<Cancellation, RepositoryError> {
        for _ in 0..ATTEMPTS {
            let Some(stored) = self.store.get_as::<BookingItem>(&booking_key(id)).await? else {
                return Ok(Cancellation::NotFound);
            };
            let mut booking = stored.booking.into_domain()?;
            if booking.cancelled_at.is_some() {
                return Ok(Cancellation::AlreadyCancelled(booking));
            }
            booking.cancelled_at = Some(cancelled_at);
            let mut writes = vec![
                self.store.update(
                    &booking_key(id),
                    "SET #cancelled_at = :at",
                    Some("attribute_not_exists(#cancelled_at)"),
                    &Expr::new().value(":at", n(millis(cancelled_at))),
                )?,
                stage(&self.store, announce)?,
            ];
            // Its seats go back in the same transaction (to an inventory that is still there).
            let inventory = self
                .store
                .get_projected(&inventory_key(booking.event_id), "#pk", &Expr::new())
                .await?;
            if inventory.is_some() {
                writes.push(
                    self.store.update(
                        &inventory_key(booking.event_id),
                        "SET #remaining = #remaining + :seats ADD #version :one",
                        Some("attribute_exists(#pk)"),
                        &Expr::new()
                            .value(":seats", n(booking.seats.get()))
                            .value(":one", n(1)),
                    )?,
                );
            }
            match self.store.transact(writes).await {
                Ok(()) => return Ok(Cancellation::Cancelled(booking)),
                Err(TxError::Refused(..)) => {}
                Err(TxError::Store(error)) => return Err(error),
            }
        }
        Err(contended("cancelling a booking"))
    }

    async fn finish_seat_returns(
        &self,
        _cancelled_before: chrono::DateTime<chrono::Utc>,
    ) -> Result<usize, RepositoryError> {
        // A cancellation and its seats' return are one transaction here: none is left half done.
        Ok(0)
    }

    async fn booking(&self, id: BookingId) -> Result<Option<Booking>, RepositoryError> {
        self.store
            .get_as::<BookingItem>(&booking_key(id))
            .await?
            .map(|item| item.booking.into_domain())
            .transpose()
    }

    async fn bookings_for_event(
        &self,
        event_id: EventId,
        page: PageRequest,
    ) -> Result<Vec<Booking>, RepositoryError> {
        self.bookings_page(Index::G1, &format!("event#{event_id}"), page)
            .await
    }

    async fn bookings_for_user(
        &self,
        user_id: &UserId,
        page: PageRequest,
    ) -> Result<Vec<Booking>, RepositoryError> {
        self.bookings_page(Index::G2, &format!("user#{}", user_id.as_str()), page)
            .await
    }
}
