//! The booking service's collections: `inventory` (one document per event, with its remaining seats)
//! and `bookings`.

use crate::Cause;
use async_trait::async_trait;
use futures_util::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::doc;
use mongodb::options::ReturnDocument;
use myevents_domain::booking::{Booking, SeatInventory, UserId};
use myevents_domain::id::{BookingId, EventId};
use myevents_domain::messages::OutboxMessage;
use myevents_domain::seats::SeatCount;

use super::documents::{BookingDoc, InventoryDoc, OutboxDoc, to_bson_date, to_bson_id};
use super::events::find_page;
use super::{MongoStore, map_error};
use crate::{BookingRepository, Cancellation, PageRequest, PlaceBookingError, RepositoryError};

pub(crate) const INVENTORY: &str = "inventory";
pub(crate) const BOOKINGS: &str = "bookings";

/// Seat inventory and bookings in MongoDB.
///
/// [`BookingRepository::place_booking`] takes the seats with one atomic conditional update on the
/// event's inventory document (`{_id, remaining: {$gte: n}}` → `{$inc: {remaining: -n}}`), then inserts
/// the booking, its `eventBooked` embedded as a pending outbox message. It needs no transaction, so it works on a standalone server too. If the insert fails,
/// the seats are given back with `$inc: +n`; if the process dies between the two writes, the seats stay
/// taken without a booking (never an oversell, at worst unsold seats, which the log names).
#[derive(Debug, Clone)]
pub struct MongoBookingRepository {
    store: MongoStore,
    inventory: Collection<InventoryDoc>,
    bookings: Collection<BookingDoc>,
}

impl MongoBookingRepository {
    /// Gives a cancelled booking's seats back to its event's inventory at most once (the inventory
    /// lists the bookings it took back), then clears the booking's `returning` flag.
    async fn give_seats_back(&self, booking: &Booking) -> Result<(), RepositoryError> {
        let bid = to_bson_id(booking.id.object_id());
        let seats = i64::from(booking.seats.get());
        self.inventory
            .update_one(
                doc! {"_id": to_bson_id(booking.event_id.object_id()), "returned": {"$ne": bid}},
                doc! {"$inc": {"remaining": seats}, "$push": {"returned": bid}},
            )
            .await
            .map_err(map_error)?;
        self.bookings
            .update_one(doc! {"_id": bid}, doc! {"$unset": {"returning": ""}})
            .await
            .map_err(map_error)?;
        Ok(())
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

#[async_trait]
impl BookingRepository for MongoBookingRepository {
    async fn add_inventory(&self, inventory: &SeatInventory) -> Result<bool, RepositoryError> {
        self.store.ensure_initialised()?;
        let id = to_bson_id(inventory.event_id.object_id());
        let result = self
            .inventory
            .update_one(
                doc! {"_id": id},
                doc! {"$setOnInsert": {
                    "name": &inventory.event_name,
                    "capacity": i64::from(inventory.capacity.get()),
                    "remaining": i64::from(inventory.remaining.get()),
                }},
            )
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

    async fn inventory(&self, event_id: EventId) -> Result<Option<SeatInventory>, RepositoryError> {
        self.store.ensure_initialised()?;
        self.inventory
            .find_one(doc! {"_id": to_bson_id(event_id.object_id())})
            .await
            .map_err(map_error)?
            .map(SeatInventory::try_from)
            .transpose()
    }

    async fn place_booking(
        &self,
        booking: &Booking,
        announce: &OutboxMessage,
    ) -> Result<SeatCount, PlaceBookingError> {
        self.store.ensure_initialised()?;
        let event = to_bson_id(booking.event_id.object_id());
        let seats = i64::from(booking.seats.get());
        // The conditional update either takes the seats or matches nothing. Nothing matched can mean an
        // unknown event, too few seats, or an inventory created (or seats given back) between the
        // update and the read that tells which: then try again.
        let mut attempts = 0;
        let taken = loop {
            attempts += 1;
            let taken = self
                .inventory
                .find_one_and_update(
                    doc! {"_id": event, "remaining": {"$gte": seats}},
                    doc! {"$inc": {"remaining": -seats}},
                )
                .return_document(ReturnDocument::After)
                .await
                .map_err(map_error)?;
            if let Some(taken) = taken {
                break taken;
            }
            match self.inventory(booking.event_id).await? {
                None => return Err(PlaceBookingError::EventNotFound),
                Some(inventory) if inventory.remaining < booking.seats || attempts >= 5 => {
                    return Err(PlaceBookingError::SoldOut {
                        remaining: inventory.remaining,
                    });
                }
                Some(_) => continue,
            }
        };
        let mut document = BookingDoc::from(booking);
        document.outbox.push(OutboxDoc::from(announce));
        if let Err(error) = self.bookings.insert_one(document).await {
            let error = map_error(error);
            let give_back = self
                .inventory
                .update_one(doc! {"_id": event}, doc! {"$inc": {"remaining": seats}})
                .await;
            if let Err(lost) = give_back {
                tracing::error!(event_id = %booking.event_id, seats, error = %lost,
                    "booking failed and its seats could not be given back");
            }
            return Err(error.into());
        }
        Ok(SeatInventory::try_from(taken)?.remaining)
    }

    async fn cancel_booking(
        &self,
        id: BookingId,
        cancelled_at: chrono::DateTime<chrono::Utc>,
        announce: &OutboxMessage,
    ) -> Result<Cancellation, RepositoryError> {
        self.store.ensure_initialised()?;
        let bid = to_bson_id(id.object_id());
        let outbox = mongodb::bson::to_bson(&OutboxDoc::from(announce))
            .map_err(|e| RepositoryError::Unexpected(Cause::new(e)))?;
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
        // 2. Give the seats back, once per booking, and clear the flag. A crash in between leaves the
        //    flag: a repeated cancel, or the sweep (`finish_seat_returns`), finishes it.
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
        let mut interrupted = self
            .bookings
            .find(doc! {"returning": true, "cancelled_at": {"$lt": to_bson_date(cancelled_before)}})
            .limit(1000)
            .await
            .map_err(map_error)?;
        let mut finished = 0;
        while let Some(document) = interrupted.try_next().await.map_err(map_error)? {
            let booking = Booking::try_from(document)?;
            self.give_seats_back(&booking).await?;
            tracing::warn!(booking_id = %booking.id, event_id = %booking.event_id,
                seats = booking.seats.get(), "finished giving back the seats of a cancelled booking");
            finished += 1;
        }
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
