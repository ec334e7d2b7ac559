//! The event service's consumer: keeps each event's booked seats from `eventBooked` and
//! `bookingCancelled`, once per message id and subscription (the store's inbox), so
//! `SeatsAvailable` follows the booking service. It only decodes the message, calls
//! [`EventService::record_booked_seats`] and acknowledges.

use async_trait::async_trait;
use myevents_broker::Cause;
use myevents_broker::{HandlingError, Message, MessageHandler};
use myevents_domain::messages::{DomainEvent, EVENT_SERVICE_SUBSCRIBER};
use myevents_store::{InboxKey, SeatChange};

use crate::service::EventService;

/// The event names the event service's subscription is bound to.
pub const CONSUMES: &[&str] = EVENT_SERVICE_SUBSCRIBER.consumes;

/// Records booked (and given back) seats per event, idempotently.
pub struct EventBookedHandler {
    /// The use cases.
    pub events: EventService,
    /// The subscription the messages arrive on (queue or consumer group): the inbox's consumer.
    pub consumer: String,
}

impl EventBookedHandler {
    fn inbox_key<'a>(&'a self, message: &'a Message) -> InboxKey<'a> {
        InboxKey {
            consumer: &self.consumer,
            message_id: &message.id,
        }
    }
}

#[async_trait]
impl MessageHandler for EventBookedHandler {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        let event = DomainEvent::from_json(&message.name, &message.payload)
            .map_err(|e| HandlingError::Poison(Cause::new(e)))?;
        let (event_id, seats) = match event {
            // A reference booking service does not say how many seats: nothing to count then.
            DomainEvent::EventBooked(booked) => match booked.seats {
                Some(seats) => (booked.event_id, i64::from(seats)),
                None => {
                    tracing::warn!(event_id = %booked.event_id, message_id = %message.id,
                        "eventBooked without seats; availability not changed");
                    return Ok(());
                }
            },
            DomainEvent::BookingCancelled(cancelled) => {
                (cancelled.event_id, -i64::from(cancelled.seats))
            }
            _ => {
                tracing::debug!(event_name = %message.name, message_id = %message.id,
                    "not an event this service handles; acknowledged");
                return Ok(());
            }
        };
        let change = self
            .events
            .record_booked_seats(event_id, self.inbox_key(message), seats)
            .await
            .map_err(myevents_messaging::store_failure)?;
        match change {
            SeatChange::Applied | SeatChange::Duplicate => {
                tracing::info!(%event_id, message_id = %message.id, seats,
                    duplicate = change == SeatChange::Duplicate, "booked seats recorded");
                Ok(())
            }
            SeatChange::UnknownEvent => Err(HandlingError::Poison(Cause::msg(format!(
                "{} for unknown event {event_id}",
                message.name
            )))),
        }
    }
}
