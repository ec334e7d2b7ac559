//! The topic, the queues and the subscriptions: created when missing (or only checked, when the
//! deployment owns them), and the mapping of AWS errors onto [`BrokerError`].

use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::QueueAttributeName;
use myevents_broker::config::SqsTopology;
use myevents_broker::{BrokerError, Cause, Subscription};

use crate::SqsBroker;

/// A subscription's queue URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Queues {
    /// The queue the subscription reads.
    pub(crate) queue: String,
    /// Its dead-letter queue (`None` for a subscription without one, e.g. a dead-letter queue's own).
    pub(crate) dead_letter: Option<String>,
}

/// The SQS queue name of a subscription: dots become hyphens (SQS allows letters, digits, `-` and
/// `_`), and FIFO queues end in `.fifo`; `booking` → `booking.fifo`, `booking.dlq` →
/// `booking-dlq.fifo`.
pub(crate) fn queue_name(subscription: &str) -> String {
    format!("{}.fifo", subscription.replace('.', "-"))
}

/// The filter policy that lets exactly `event_names` through, on the `x-event-name` attribute.
fn filter_policy(event_names: &[String]) -> String {
    serde_json::json!({ crate::wire::EVENT_NAME: event_names }).to_string()
}

/// Maps a failed SNS or SQS call (both SDKs share the error type): no answer (connection, time-out,
/// a 5xx or throttling the SDK gave up retrying) is [`BrokerError::Unavailable`]; a missing topic or
/// queue, or refused access, is [`BrokerError::Misconfigured`]; other refusals are
/// [`BrokerError::Refused`]. The text says what was being done, the error code and the service's
/// message (or, without an answer, the SDK's whole error chain).
pub(crate) fn aws_error<E, R>(doing: &str, error: &SdkError<E, R>) -> BrokerError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let code = error.code().map(str::to_owned);
    let service = matches!(error, SdkError::ServiceError(_));
    // A service's refusal says what it is in its message; anything else needs the whole chain
    // (a connection refused, a time-out, a response that could not be read).
    let detail = if service {
        error.message().unwrap_or("no message").to_owned()
    } else {
        DisplayErrorContext(error).to_string()
    };
    let cause = Cause::msg(format!(
        "{doing} ({}): {detail}",
        code.as_deref().unwrap_or("no answer")
    ));
    let throttled_or_down = |code: &str| {
        ["Throttl", "Unavailable", "InternalError", "InternalFailure"]
            .iter()
            .any(|part| code.contains(part))
    };
    match code.as_deref() {
        _ if !service => BrokerError::Unavailable(cause),
        Some(code) if throttled_or_down(code) => BrokerError::Unavailable(cause),
        Some(
            "NotFound"
            | "AuthorizationError"
            | "AccessDenied"
            | "AccessDeniedException"
            | "AWS.SimpleQueueService.NonExistentQueue"
            | "QueueDoesNotExist"
            | "InvalidClientTokenId"
            | "UnrecognizedClientException",
        ) => BrokerError::Misconfigured(cause),
        _ => BrokerError::Refused(cause),
    }
}

/// Whether a failed call says that the topic or queue it named does not exist (any more): what
/// the adapter learnt of the topology is then forgotten ([`SqsBroker::forget_topology`]).
pub(crate) fn is_gone<E, R>(error: &SdkError<E, R>) -> bool
where
    E: ProvideErrorMetadata,
{
    matches!(
        error.code(),
        Some("NotFound" | "AWS.SimpleQueueService.NonExistentQueue" | "QueueDoesNotExist")
    )
}

impl SqsBroker {
    /// The topic's ARN: created (idempotent) or, when the deployment owns the topology, looked up;
    /// kept until [`SqsBroker::forget_topology`].
    ///
    /// # Errors
    /// [`BrokerError::Misconfigured`] when the topic is missing and may not be created.
    pub(crate) async fn topic_arn(&self) -> Result<String, BrokerError> {
        let mut known = self.inner.topic_arn.lock().await;
        if let Some(arn) = known.as_ref() {
            return Ok(arn.clone());
        }
        let arn = async {
            let sns = &self.clients().await?.sns;
            let name = format!("{}.fifo", self.inner.config.topic);
            match self.inner.config.topology_mode {
                SqsTopology::Create => {
                    let created = sns
                        .create_topic()
                        .name(&name)
                        .attributes("FifoTopic", "true")
                        .send()
                        .await
                        .map_err(|e| aws_error(&format!("creating topic {name}"), &e))?;
                    created.topic_arn().map(str::to_owned).ok_or_else(|| {
                        BrokerError::Unexpected(Cause::msg("CreateTopic answered no ARN"))
                    })
                }
                SqsTopology::Check => {
                    let mut pages = sns.list_topics().into_paginator().send();
                    while let Some(page) = pages.next().await {
                        let page = page.map_err(|e| aws_error("listing topics", &e))?;
                        let suffix = format!(":{name}");
                        if let Some(arn) = page
                            .topics()
                            .iter()
                            .filter_map(|topic| topic.topic_arn())
                            .find(|arn| arn.ends_with(&suffix))
                        {
                            return Ok(arn.to_owned());
                        }
                    }
                    Err(BrokerError::Misconfigured(Cause::msg(format!(
                        "SNS topic {name} does not exist and SQS_TOPOLOGY=check: create it \
                             (FIFO) or set SQS_TOPOLOGY=create"
                    ))))
                }
            }
        }
        .await?;
        *known = Some(arn.clone());
        Ok(arn)
    }

    /// The queues of `subscription`, declared on first use: its dead-letter queue, its queue (with
    /// the redrive policy to the first, the visibility time-out and long polling) and, when it
    /// lists event names, its subscription to the topic with the filter policy.
    pub(crate) async fn queues(&self, subscription: &Subscription) -> Result<Queues, BrokerError> {
        if let Some(queues) = self.inner.queues.lock().await.get(&subscription.name) {
            return Ok(queues.clone());
        }
        if !subscription.event_names.is_empty() {
            // The topic first: a deployment that lacks everything hears of it first.
            self.topic_arn().await?;
        }
        let dead_letter = if subscription.dead_letter {
            let name = queue_name(&subscription.dead_letter_queue());
            Some(self.queue(&name, Vec::new()).await?)
        } else {
            None
        };
        let config = &self.inner.config;
        let mut settings = vec![
            (
                QueueAttributeName::VisibilityTimeout,
                config.visibility_timeout.as_secs().to_string(),
            ),
            (
                QueueAttributeName::ReceiveMessageWaitTimeSeconds,
                config.wait_time.as_secs().to_string(),
            ),
        ];
        if let Some((_, arn)) = &dead_letter {
            settings.push((
                QueueAttributeName::RedrivePolicy,
                serde_json::json!({
                    "deadLetterTargetArn": arn,
                    "maxReceiveCount": config.max_receive_count.to_string(),
                })
                .to_string(),
            ));
        }
        let name = queue_name(&subscription.name);
        let (queue, queue_arn) = self.queue(&name, settings).await?;
        if !subscription.event_names.is_empty() {
            self.subscribe_queue(&name, &queue, &queue_arn, &subscription.event_names)
                .await?;
        }
        let queues = Queues {
            queue,
            dead_letter: dead_letter.map(|(url, _)| url),
        };
        self.inner
            .queues
            .lock()
            .await
            .insert(subscription.name.clone(), queues.clone());
        Ok(queues)
    }

    /// A FIFO queue's URL and ARN: created with `settings` (or, in check mode, found), the settings
    /// applied again to a queue that exists (they may have changed since).
    async fn queue(
        &self,
        name: &str,
        settings: Vec<(QueueAttributeName, String)>,
    ) -> Result<(String, String), BrokerError> {
        let sqs = &self.clients().await?.sqs;
        let url = match self.inner.config.topology_mode {
            SqsTopology::Create => sqs
                .create_queue()
                .queue_name(name)
                .attributes(QueueAttributeName::FifoQueue, "true")
                .send()
                .await
                .map_err(|e| aws_error(&format!("creating queue {name}"), &e))?
                .queue_url()
                .map(str::to_owned),
            SqsTopology::Check => sqs
                .get_queue_url()
                .queue_name(name)
                .send()
                .await
                .map_err(|e| match aws_error(&format!("finding queue {name}"), &e) {
                    BrokerError::Misconfigured(cause) => BrokerError::Misconfigured(Cause::msg(
                        format!("{cause}; with SQS_TOPOLOGY=check the deployment must create it"),
                    )),
                    other => other,
                })?
                .queue_url()
                .map(str::to_owned),
        }
        .ok_or_else(|| BrokerError::Unexpected(Cause::msg(format!("no URL for queue {name}"))))?;
        if self.inner.config.topology_mode == SqsTopology::Create && !settings.is_empty() {
            sqs.set_queue_attributes()
                .queue_url(&url)
                .set_attributes(Some(settings.into_iter().collect()))
                .send()
                .await
                .map_err(|e| aws_error(&format!("setting up queue {name}"), &e))?;
        }
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(|e| aws_error(&format!("reading queue {name}"), &e))?;
        let arn = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .ok_or_else(|| {
                BrokerError::Unexpected(Cause::msg(format!("no ARN for queue {name}")))
            })?;
        Ok((url, arn))
    }

    /// Subscribes the queue to the topic (raw delivery, a filter policy on the event names) and
    /// lets the topic send to it; an existing subscription gets the current filter policy.
    async fn subscribe_queue(
        &self,
        name: &str,
        queue: &str,
        queue_arn: &str,
        event_names: &[String],
    ) -> Result<(), BrokerError> {
        let clients = self.clients().await?;
        let topic_arn = self.topic_arn().await?;
        let existing = self.subscription_of(&topic_arn, queue_arn).await?;
        if self.inner.config.topology_mode == SqsTopology::Check {
            return match existing {
                Some(_) => Ok(()),
                None => Err(BrokerError::Misconfigured(Cause::msg(format!(
                    "queue {name} is not subscribed to {topic_arn} and SQS_TOPOLOGY=check"
                )))),
            };
        }
        // Only this topic may send to the queue (needed on AWS, where a queue refuses SNS
        // otherwise).
        let policy = serde_json::json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Service": "sns.amazonaws.com" },
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": { "ArnEquals": { "aws:SourceArn": topic_arn } },
            }],
        });
        clients
            .sqs
            .set_queue_attributes()
            .queue_url(queue)
            .attributes(QueueAttributeName::Policy, policy.to_string())
            .send()
            .await
            .map_err(|e| aws_error(&format!("letting the topic send to {name}"), &e))?;
        let filter = filter_policy(event_names);
        match existing {
            Some(subscription_arn) => {
                clients
                    .sns
                    .set_subscription_attributes()
                    .subscription_arn(subscription_arn)
                    .attribute_name("FilterPolicy")
                    .attribute_value(filter)
                    .send()
                    .await
                    .map_err(|e| aws_error(&format!("updating the filter of {name}"), &e))?;
            }
            None => {
                clients
                    .sns
                    .subscribe()
                    .topic_arn(&topic_arn)
                    .protocol("sqs")
                    .endpoint(queue_arn)
                    .attributes("RawMessageDelivery", "true")
                    .attributes("FilterPolicy", filter)
                    .return_subscription_arn(true)
                    .send()
                    .await
                    .map_err(|e| aws_error(&format!("subscribing {name}"), &e))?;
            }
        }
        Ok(())
    }

    /// The ARN of the topic's subscription that delivers to `queue_arn`, if there is one.
    async fn subscription_of(
        &self,
        topic_arn: &str,
        queue_arn: &str,
    ) -> Result<Option<String>, BrokerError> {
        let sns = &self.clients().await?.sns;
        let mut pages = sns
            .list_subscriptions_by_topic()
            .topic_arn(topic_arn)
            .into_paginator()
            .send();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| aws_error("listing the topic's subscriptions", &e))?;
            if let Some(found) = page
                .subscriptions()
                .iter()
                .find(|s| s.endpoint() == Some(queue_arn))
                .and_then(|s| s.subscription_arn())
            {
                return Ok(Some(found.to_owned()));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_names_are_fifo_names_without_dots() {
        assert_eq!(queue_name("booking"), "booking.fifo");
        assert_eq!(queue_name("booking.dlq"), "booking-dlq.fifo");
    }

    #[test]
    fn the_filter_lets_the_listed_names_through() {
        assert_eq!(
            filter_policy(&["eventCreated".to_owned(), "eventUpdated".to_owned()]),
            r#"{"x-event-name":["eventCreated","eventUpdated"]}"#
        );
    }
}
