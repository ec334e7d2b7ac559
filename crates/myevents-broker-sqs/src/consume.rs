//! The consume loop: long polling, each message handled in order while the visibility of the ones
//! in hand is extended, handled ones deleted in one batch, dead letters sent to the dead-letter
//! queue.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, DeleteMessageBatchRequestEntry,
    MessageSystemAttributeName,
};
use myevents_broker::adapter::{ConsumerSignals, Outcome, mark_dead_letter, process};
use myevents_broker::{BrokerError, Cause, Consumer, Message, MessageHandler, Subscription};

use crate::topology::{Queues, aws_error, is_gone};
use crate::{SqsBroker, wire};

/// The most messages SQS returns in one receive.
const RECEIVE_MAX: i32 = 10;

/// Starts the supervised consume loop of `subscription`.
pub(crate) fn spawn(
    broker: SqsBroker,
    subscription: Subscription,
    handler: Arc<dyn MessageHandler>,
) -> Consumer {
    let attached = Arc::new(AtomicBool::new(false));
    Consumer::spawn(&subscription.name.clone(), attached, move |signals| {
        let (broker, subscription, handler) =
            (broker.clone(), subscription.clone(), Arc::clone(&handler));
        async move {
            // Declared by each run, so that AWS unreachable at start-up delays consumption (the
            // supervisor starts the run again), not the service.
            match broker.queues(&subscription).await {
                Ok(queues) => consume(&broker, &subscription, queues, handler, signals).await,
                Err(error) => {
                    tracing::error!(%error, subscription = %subscription.name,
                        "the subscription's queues cannot be declared");
                }
            }
        }
    })
}

/// A received message and what became of it.
struct InHand {
    receipt: String,
    state: State,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    /// Not handled yet (or in hand): its visibility is extended, and a shutdown hands it back.
    Pending,
    /// Handled or dead-lettered: deleted.
    Settled,
    /// Could not be settled (its dead-lettering failed, or it failed in a dead-letter queue's
    /// reader): left to come again once its visibility time-out ends.
    Left,
}

async fn consume(
    broker: &SqsBroker,
    subscription: &Subscription,
    mut queues: Queues,
    handler: Arc<dyn MessageHandler>,
    signals: ConsumerSignals,
) {
    let Ok(clients) = broker.clients().await else {
        return;
    };
    let sqs = &clients.sqs;
    let config = broker.config();
    // The queues were just declared: SQS answers, and a long poll can take 20 s to return.
    signals.set_attached(true);
    let mut failures = 0u32;
    loop {
        let receive = sqs
            .receive_message()
            .queue_url(&queues.queue)
            .max_number_of_messages(RECEIVE_MAX)
            .wait_time_seconds(seconds(config.wait_time))
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send();
        // Stopping drops a pending receive: what it would have returned stays invisible for the
        // visibility time-out, then comes again (to another consumer).
        let received = tokio::select! {
            biased;
            () = signals.stopping() => break,
            received = receive => received,
        };
        let received = match received {
            Ok(received) => {
                signals.set_attached(true);
                failures = 0;
                received
            }
            Err(error) => {
                signals.set_attached(false);
                if is_gone(&error) {
                    // Deleted, or a local server that keeps nothing restarted: declared again
                    // here; if that fails (in check mode: it names the missing part), the run
                    // ends and the supervisor starts the next one, which tries again.
                    tracing::warn!(queue = %queues.queue, error = %aws_error("receiving", &error),
                        "the subscription's queue is gone");
                    broker.forget_topology().await;
                    match broker.queues(subscription).await {
                        Ok(declared) => {
                            queues = declared;
                            continue;
                        }
                        Err(error) => {
                            tracing::error!(%error, subscription = %subscription.name,
                                "the subscription's queues cannot be declared again");
                            return;
                        }
                    }
                }
                failures = failures.saturating_add(1);
                let error = aws_error("receiving", &error);
                tracing::warn!(%error, queue = %queues.queue, "SQS receive failed");
                let pause = Duration::from_millis(200 * u64::from(failures.min(25)));
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = signals.stopping() => break,
                }
            }
        };
        let messages = received.messages();
        let mut in_hand: Vec<InHand> = messages
            .iter()
            .map(|m| InHand {
                receipt: m.receipt_handle().unwrap_or_default().to_owned(),
                state: State::Pending,
            })
            .collect();
        for (index, received) in messages.iter().enumerate() {
            if signals.is_stopping() {
                break;
            }
            let outcome = match wire::decode(received) {
                Err(reason) => Some((reason, None)),
                Ok(message) if !wanted(subscription, &message) => None,
                Ok(message) => {
                    let processing =
                        process(handler.as_ref(), &message, config.retry, signals.metrics());
                    let Some(outcome) =
                        extend_while(broker, &queues, &in_hand[index..], processing, &signals)
                            .await
                    else {
                        // Killed: a crash, nothing deleted or handed back.
                        return;
                    };
                    match outcome {
                        Outcome::Ack => None,
                        Outcome::DeadLetter(reason) => Some((reason, Some(message))),
                    }
                }
            };
            if let Some((reason, message)) = outcome {
                if !subscription.dead_letter {
                    // A dead-letter queue's own reader: the message stays, to come again.
                    tracing::error!(%reason, queue = %queues.queue,
                        "a dead letter could not be handled; left in its queue");
                    in_hand[index].state = State::Left;
                    continue;
                }
                let message = message.unwrap_or_else(|| undecodable(received));
                if let Err(error) =
                    dead_letter(broker, subscription, &queues, message, reason).await
                {
                    // Not deleted: the message comes again after the visibility time-out. The run
                    // ends, as with the other adapters, so that the supervisor counts a restart
                    // and the consumer's health shows it while it keeps failing.
                    tracing::error!(%error, "dead-lettering failed; the message stays in its queue");
                    in_hand[index].state = State::Left;
                    settle(broker, &queues, &in_hand).await;
                    signals.set_attached(false);
                    return;
                }
            }
            in_hand[index].state = State::Settled;
        }
        settle(broker, &queues, &in_hand).await;
        if signals.is_stopping() {
            break;
        }
    }
    signals.set_attached(false);
}

/// Whether `subscription` handles `message` (the filter policy lets only its names through; a
/// dead-letter queue's reader takes everything).
fn wanted(subscription: &Subscription, message: &Message) -> bool {
    subscription.event_names.is_empty() || subscription.event_names.contains(&message.name)
}

/// Runs `processing` while extending, every third of the visibility time-out, the visibility of
/// the messages of `pending` (the one in hand and those received after it); `None` when the
/// consumer is killed meanwhile.
async fn extend_while(
    broker: &SqsBroker,
    queues: &Queues,
    pending: &[InHand],
    processing: impl Future<Output = Outcome>,
    signals: &ConsumerSignals,
) -> Option<Outcome> {
    let visibility = broker.config().visibility_timeout;
    let period = (visibility / 3).max(Duration::from_millis(500));
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    tokio::pin!(processing);
    loop {
        tokio::select! {
            biased;
            () = signals.killed() => return None,
            outcome = &mut processing => return Some(outcome),
            _ = beat.tick() => {
                change_visibility(broker, queues, pending, seconds(visibility)).await;
            }
        }
    }
}

/// Sets the visibility time-out of the pending messages of `in_hand` (0: hands them back).
async fn change_visibility(broker: &SqsBroker, queues: &Queues, in_hand: &[InHand], seconds: i32) {
    let Ok(clients) = broker.clients().await else {
        return;
    };
    let entries: Vec<_> = in_hand
        .iter()
        .enumerate()
        .filter(|(_, m)| m.state == State::Pending)
        .filter_map(|(i, m)| {
            ChangeMessageVisibilityBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&m.receipt)
                .visibility_timeout(seconds)
                .build()
                .ok()
        })
        .collect();
    if entries.is_empty() {
        return;
    }
    if let Err(error) = clients
        .sqs
        .change_message_visibility_batch()
        .queue_url(&queues.queue)
        .set_entries(Some(entries))
        .send()
        .await
    {
        // The messages may then come again to another consumer: handled twice, never lost.
        let error = aws_error("changing visibility", &error);
        tracing::warn!(%error, queue = %queues.queue, "visibility not changed");
    }
}

/// Deletes the settled messages of `in_hand` in one batch and hands the others back.
async fn settle(broker: &SqsBroker, queues: &Queues, in_hand: &[InHand]) {
    let Ok(clients) = broker.clients().await else {
        return;
    };
    let entries: Vec<_> = in_hand
        .iter()
        .enumerate()
        .filter(|(_, m)| m.state == State::Settled)
        .filter_map(|(i, m)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(i.to_string())
                .receipt_handle(&m.receipt)
                .build()
                .ok()
        })
        .collect();
    if !entries.is_empty() {
        match clients
            .sqs
            .delete_message_batch()
            .queue_url(&queues.queue)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => {
                for failed in output.failed() {
                    tracing::warn!(
                        id = failed.id(),
                        code = failed.code(),
                        "a handled message was not deleted; it will come again"
                    );
                }
            }
            Err(error) => {
                let error = aws_error("deleting handled messages", &error);
                tracing::warn!(%error, "handled messages not deleted; they will come again");
            }
        }
    }
    // Stopped before their turn (a graceful shutdown): back to the queue at once.
    change_visibility(broker, queues, in_hand, 0).await;
}

/// Sends `message` to the subscription's dead-letter queue with the reason.
async fn dead_letter(
    broker: &SqsBroker,
    subscription: &Subscription,
    queues: &Queues,
    mut message: Message,
    reason: String,
) -> Result<(), BrokerError> {
    let queue = queues.dead_letter.as_deref().ok_or_else(|| {
        BrokerError::Unexpected(Cause::msg(
            "a subscription with dead letters has no queue for them",
        ))
    })?;
    mark_dead_letter(subscription, &mut message, reason);
    let sqs = &broker.clients().await?.sqs;
    wire::send_request(sqs, queue, &message)?
        .send()
        .await
        .map_err(|error| aws_error("sending a dead letter", &error))?;
    Ok(())
}

/// A message that is not one of ours, as a [`Message`] for its dead-letter queue: the body as it
/// came, its SQS message id.
fn undecodable(received: &aws_sdk_sqs::types::Message) -> Message {
    Message {
        id: received.message_id().unwrap_or_default().to_owned(),
        name: String::new(),
        key: String::new(),
        timestamp: chrono::Utc::now(),
        payload: received.body().unwrap_or_default().as_bytes().to_vec(),
        headers: std::collections::BTreeMap::new(),
    }
}

/// Whole seconds, as the SQS API counts them.
fn seconds(duration: Duration) -> i32 {
    i32::try_from(duration.as_secs()).unwrap_or(i32::MAX)
}
