//! The booking service's consumer: learns events (and their capacity) from `eventCreated`. It only
//! decodes the message, calls [`BookingService::record_event`] and acknowledges.

use async_trait::async_trait;
use myevents_broker::Cause;
use myevents_broker::{HandlingError, Message, MessageHandler};
use myevents_domain::messages::{BOOKING_SERVICE_SUBSCRIBER, DomainEvent};

use crate::service::BookingService;

/// The event names the booking service's subscription is bound to.
pub const CONSUMES: &[&str] = BOOKING_SERVICE_SUBSCRIBER.consumes;

/// Records the seat inventory of each created event (idempotently).
pub struct EventCreatedHandler {
    /// The use cases.
    pub bookings: BookingService,
}

#[async_trait]
impl MessageHandler for EventCreatedHandler {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        let event = DomainEvent::from_json(&message.name, &message.payload)
            .map_err(|e| HandlingError::Poison(Cause::new(e)))?;
        let DomainEvent::EventCreated(created) = event else {
            tracing::debug!(event_name = %message.name, message_id = %message.id,
                "not an event this service handles; acknowledged");
            return Ok(());
        };
        self.bookings
            .record_event(created)
            .await
            .map_err(myevents_messaging::store_failure)?;
        Ok(())
    }
}
