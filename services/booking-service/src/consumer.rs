//! The booking service's consumer: learns events (and their capacity) from `eventCreated`, their
//! changes from `eventUpdated` and their cancellation from `eventCancelled`. It only decodes the
//! message, calls the use case of [`BookingService`] and acknowledges.

use async_trait::async_trait;
use myevents_broker::Cause;
use myevents_broker::{HandlingError, Message, MessageHandler};
use myevents_domain::messages::{BOOKING_SERVICE_SUBSCRIBER, DomainEvent};

use crate::service::BookingService;

/// The event names the booking service's subscription is bound to.
pub const CONSUMES: &[&str] = BOOKING_SERVICE_SUBSCRIBER.consumes;

/// Keeps the seat inventory of each event as its messages describe it (idempotently, and in the
/// order of the event's revisions whatever order the messages come in).
pub struct EventMessagesHandler {
    /// The use cases.
    pub bookings: BookingService,
}

#[async_trait]
impl MessageHandler for EventMessagesHandler {
    async fn handle(&self, message: &Message) -> Result<(), HandlingError> {
        let event = DomainEvent::from_json(&message.name, &message.payload)
            .map_err(|e| HandlingError::Poison(Cause::new(e)))?;
        let applied = match event {
            DomainEvent::EventCreated(created) => {
                self.bookings.record_event(created).await.map(drop)
            }
            DomainEvent::EventUpdated(updated) => {
                self.bookings.record_change(updated).await.map(drop)
            }
            DomainEvent::EventCancelled(cancelled) => {
                self.bookings.record_cancellation(cancelled).await.map(drop)
            }
            _ => {
                tracing::debug!(event_name = %message.name, message_id = %message.id,
                    "not an event this service handles; acknowledged");
                Ok(())
            }
        };
        applied.map_err(myevents_messaging::store_failure)
    }
}
