//! The event service's consumer: keeps each event's booked seats from `eventBooked`, once per message
//! id (the inbox lives in the event's own document), so `SeatsAvailable` follows the booking service.

use std::sync::Arc;

use async_trait::async_trait;
use myevents_broker::{HandlingError, Message, MessageHandler, Subscription};
use myevents_domain::messages::{DomainEvent, EVENT_BOOKED};
use myevents_store::{EventRepository, SeatChange};

/// The subscription of the event service: queue (or group) `queue` bound to `eventBooked`.
pub fn subscription(queue: &str) -> Subscription {
    Subscription::new(queue, &[EVENT_BOOKED])
}

/// Records booked seats per event, idempotently.
pub struct EventBookedHandler {
    /// The events.
    pub events: Arc<dyn EventRepository>,
}

#[async_trait]
impl MessageHandler for EventBookedHandler {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        let event = DomainEvent::from_json(&message.name, &message.payload)
            .map_err(|e| HandlingError::Poison(e.to_string()))?;
        let DomainEvent::EventBooked(booked) = event else {
            tracing::debug!(event_name = %message.name, message_id = %message.id,
                "not an event this service handles; acknowledged");
            return Ok(());
        };
        // A reference booking service does not say how many seats: nothing to count then.
        let Some(seats) = booked.seats else {
            tracing::warn!(event_id = %booked.event_id, message_id = %message.id,
                "eventBooked without seats; availability not changed");
            return Ok(());
        };
        let change = self
            .events
            .record_booked_seats(booked.event_id, &message.id, i64::from(seats))
            .await
            .map_err(|e| HandlingError::Transient(e.to_string()))?;
        match change {
            SeatChange::Applied | SeatChange::Duplicate => {
                tracing::info!(event_id = %booked.event_id, message_id = %message.id, seats,
                    duplicate = change == SeatChange::Duplicate, "booked seats recorded");
                Ok(())
            }
            SeatChange::UnknownEvent => Err(HandlingError::Poison(format!(
                "eventBooked for unknown event {}",
                booked.event_id
            ))),
        }
    }
}
