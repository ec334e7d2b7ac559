//! An in-process broker: durable-in-memory queues bound to event names, competing consumers, redelivery
//! of unacknowledged messages and a dead-letter queue per subscription — the semantics of the RabbitMQ
//! adapter without a server. Cloning shares the same broker.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::consume::{ConsumerSignals, Outcome, mark_dead_letter, process};
use crate::{
    BrokerError, Consumer, EventPublisher, EventSubscriber, Message, MessageHandler, RetryPolicy,
    Subscription,
};

#[derive(Debug, Default)]
struct Queue {
    /// Event names routed here; `#` matches every name.
    bindings: BTreeSet<String>,
    ready: VecDeque<Message>,
    notify: Arc<Notify>,
}

#[derive(Debug, Default)]
struct State {
    queues: HashMap<String, Queue>,
}

/// The in-process broker.
#[derive(Debug, Clone, Default)]
pub struct InMemoryBroker {
    state: Arc<Mutex<State>>,
    retry: RetryPolicy,
}

impl InMemoryBroker {
    /// A broker whose consumers retry transient failures per `retry`.
    pub fn with_retry_policy(retry: RetryPolicy) -> Self {
        Self {
            state: Arc::default(),
            retry,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the queues consistent, so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Messages waiting in queue `name` (not counting ones a consumer holds).
    pub fn ready_count(&self, name: &str) -> usize {
        self.lock().queues.get(name).map_or(0, |q| q.ready.len())
    }

    fn push(&self, queue: &str, message: Message, front: bool) {
        let mut state = self.lock();
        let q = state.queues.entry(queue.to_owned()).or_default();
        if front {
            q.ready.push_front(message);
        } else {
            q.ready.push_back(message);
        }
        q.notify.notify_waiters();
    }

    fn pop(&self, queue: &str) -> Option<Message> {
        self.lock().queues.get_mut(queue)?.ready.pop_front()
    }

    fn notifier(&self, queue: &str) -> Arc<Notify> {
        Arc::clone(
            &self
                .lock()
                .queues
                .entry(queue.to_owned())
                .or_default()
                .notify,
        )
    }

    fn dead_letter(&self, subscription: &Subscription, mut message: Message, reason: String) {
        if subscription.dead_letter {
            mark_dead_letter(subscription, &mut message, reason);
            self.push(&subscription.dead_letter_queue(), message, false);
        } else {
            // A dead-letter queue's own reader failed: keep the message where it is.
            tracing::error!(message_id = %message.id, %reason, queue = %subscription.name,
                "dead letter could not be handled; kept in its queue");
            self.push(&subscription.name, message, false);
        }
    }
}

/// Puts a taken message back at the head of its queue unless it was settled: a consumer that stops
/// mid-message (a crash) loses nothing.
struct InFlight<'a> {
    broker: &'a InMemoryBroker,
    queue: &'a str,
    message: Option<Message>,
}

impl InFlight<'_> {
    /// Takes the message out of the guard: it will not be put back.
    fn settle(mut self) -> Option<Message> {
        self.message.take()
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(message) = self.message.take() {
            self.broker.push(self.queue, message, true);
        }
    }
}

#[async_trait]
impl EventPublisher for InMemoryBroker {
    async fn publish(&self, message: &Message) -> Result<(), BrokerError> {
        let mut state = self.lock();
        let mut routed = 0;
        for queue in state.queues.values_mut() {
            if queue.bindings.contains(&message.name) || queue.bindings.contains("#") {
                queue.ready.push_back(message.clone());
                queue.notify.notify_waiters();
                routed += 1;
            }
        }
        tracing::debug!(message_id = %message.id, event_name = %message.name, routed, "published");
        Ok(())
    }
}

#[async_trait]
impl EventSubscriber for InMemoryBroker {
    async fn declare(&self, subscription: &Subscription) -> Result<(), BrokerError> {
        let mut state = self.lock();
        let queue = state.queues.entry(subscription.name.clone()).or_default();
        queue
            .bindings
            .extend(subscription.event_names.iter().cloned());
        if subscription.dead_letter {
            state
                .queues
                .entry(subscription.dead_letter_queue())
                .or_default();
        }
        Ok(())
    }

    async fn subscribe(
        &self,
        subscription: &Subscription,
        handler: Arc<dyn MessageHandler>,
    ) -> Result<Consumer, BrokerError> {
        self.declare(subscription).await?;
        let (broker, consumed) = (self.clone(), subscription.clone());
        Ok(Consumer::spawn(
            &subscription.name,
            Arc::new(AtomicBool::new(true)),
            move |signals| {
                signals.set_attached(true);
                run(
                    broker.clone(),
                    consumed.clone(),
                    Arc::clone(&handler),
                    signals,
                )
            },
        ))
    }
}

async fn run(
    broker: InMemoryBroker,
    subscription: Subscription,
    handler: Arc<dyn MessageHandler>,
    signals: ConsumerSignals,
) {
    let notify = broker.notifier(&subscription.name);
    while !signals.is_stopping() {
        let notified = notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some(message) = broker.pop(&subscription.name) else {
            tokio::select! {
                () = &mut notified => {}
                () = signals.stopping() => {}
            }
            continue;
        };
        let in_flight = InFlight {
            broker: &broker,
            queue: &subscription.name,
            message: Some(message),
        };
        let outcome = {
            let Some(message) = in_flight.message.as_ref() else {
                continue;
            };
            tokio::select! {
                biased;
                // Dropping `in_flight` puts the message back, unacknowledged.
                () = signals.kill.cancelled() => break,
                outcome = process(handler.as_ref(), message, broker.retry, signals.metrics()) => outcome,
            }
        };
        if let (Outcome::DeadLetter(reason), Some(message)) = (outcome, in_flight.settle()) {
            broker.dead_letter(&subscription, message, reason);
        }
    }
    signals.set_attached(false);
}
