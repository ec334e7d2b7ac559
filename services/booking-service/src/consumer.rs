//! The booking service's consumer: learns events (and their capacity) from `eventCreated`.

use std::sync::Arc;

use async_trait::async_trait;
use myevents_broker::{HandlingError, Message, MessageHandler, Subscription};
use myevents_domain::booking::SeatInventory;
use myevents_domain::messages::{DomainEvent, EVENT_CREATED};
use myevents_domain::seats::SeatCount;
use myevents_store::BookingRepository;

/// The subscription of the booking service: queue `queue` bound to `eventCreated`.
pub fn subscription(queue: &str) -> Subscription {
    Subscription::new(queue, &[EVENT_CREATED])
}

/// Records the seat inventory of each created event. Idempotent: a redelivered `eventCreated` leaves
/// the inventory (and its remaining seats) as it is.
pub struct EventCreatedHandler {
    /// Where the inventory is kept.
    pub repository: Arc<dyn BookingRepository>,
    /// Seats for a message without `capacity` (see `DEFAULT_EVENT_CAPACITY`).
    pub default_capacity: Option<u32>,
}

#[async_trait]
impl MessageHandler for EventCreatedHandler {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        let event = DomainEvent::from_json(&message.name, &message.payload)
            .map_err(|e| HandlingError::Poison(e.to_string()))?;
        let DomainEvent::EventCreated(created) = event else {
            tracing::debug!(event_name = %message.name, message_id = %message.id,
                "not an event this service handles; acknowledged");
            return Ok(());
        };
        let capacity = created
            .capacity
            .or(self.default_capacity)
            .unwrap_or_else(|| {
                tracing::warn!(event_id = %created.id, "eventCreated without capacity and no \
                DEFAULT_EVENT_CAPACITY: the event is recorded with 0 seats");
                0
            });
        let inventory = SeatInventory::new(created.id, created.name, SeatCount::new(capacity));
        let added = self
            .repository
            .add_inventory(&inventory)
            .await
            .map_err(|e| HandlingError::Transient(e.to_string()))?;
        tracing::info!(event_id = %created.id, message_id = %message.id, capacity, added,
            "event recorded for booking");
        Ok(())
    }
}
