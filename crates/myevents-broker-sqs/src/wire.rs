//! A [`Message`] as an SNS publish or an SQS message, and back: the body is the payload, the rest
//! travels as message attributes (see the crate's documentation for the format and its limits).

use std::collections::HashMap;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use myevents_broker::{BrokerError, Cause, EVENT_NAME_HEADER, Message};

/// The attribute naming the event: the topic's filter policies match on it.
pub(crate) const EVENT_NAME: &str = EVENT_NAME_HEADER;
/// The attribute holding the message's id.
const MESSAGE_ID: &str = "x-message-id";
/// The attribute holding the message's time (RFC 3339, UTC).
const TIMESTAMP: &str = "x-timestamp";
/// The attribute that marks a base64 body (a payload that is not valid XML text).
const PAYLOAD_ENCODING: &str = "x-payload-encoding";
/// The most message attributes SNS and SQS carry.
const MAX_ATTRIBUTES: usize = 10;
/// The data type of an attribute whose value is empty: SNS and SQS refuse an empty string value, so
/// it travels as `-` with this type and comes back empty.
const EMPTY_STRING: &str = "String.empty";
/// The message group id of an empty key (a group id must not be empty).
const EMPTY_KEY_GROUP: &str = "-";

/// What every attribute of a message is: (name, value), in a stable order.
fn attributes(message: &Message) -> Result<(String, Vec<(String, String)>), BrokerError> {
    let (body, encoded) = match std::str::from_utf8(&message.payload) {
        Ok(text) if text.chars().all(is_xml_char) => (text.to_owned(), false),
        _ => (
            base64::engine::general_purpose::STANDARD.encode(&message.payload),
            true,
        ),
    };
    let mut attributes = vec![
        (EVENT_NAME.to_owned(), message.name.clone()),
        (MESSAGE_ID.to_owned(), message.id.clone()),
        (
            TIMESTAMP.to_owned(),
            message
                .timestamp
                .to_rfc3339_opts(SecondsFormat::AutoSi, true),
        ),
    ];
    if encoded {
        attributes.push((PAYLOAD_ENCODING.to_owned(), "base64".to_owned()));
    }
    for (name, value) in &message.headers {
        if !is_attribute_name(name) || attributes.iter().any(|(taken, _)| taken == name) {
            return Err(refused(format!(
                "header {name:?} cannot be a message attribute (letters, digits, '-', '_' and \
                 '.' only, not starting with AWS. or Amazon., not one of ours)"
            )));
        }
        attributes.push((name.clone(), value.clone()));
    }
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(refused(format!(
            "message {} has {} headers; SNS and SQS carry {MAX_ATTRIBUTES} message attributes, \
             {} of which this adapter uses",
            message.id,
            message.headers.len(),
            attributes.len() - message.headers.len()
        )));
    }
    Ok((body, attributes))
}

fn refused(text: String) -> BrokerError {
    BrokerError::Refused(Cause::msg(text))
}

/// The characters SNS and SQS accept in a body or a string attribute (XML 1.0's `Char`).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// An attribute name SNS and SQS accept (up to 256 of `A-Za-z0-9_-.`, no leading, trailing or
/// double dot, not starting with `AWS.` or `Amazon.`, any case).
fn is_attribute_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !name.is_empty()
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !name.contains("..")
        && !lower.starts_with("aws.")
        && !lower.starts_with("amazon.")
}

fn group_id(message: &Message) -> &str {
    if message.key.is_empty() {
        EMPTY_KEY_GROUP
    } else {
        &message.key
    }
}

/// An attribute's data type and the value sent for `value` (an empty one as `-` of type
/// [`EMPTY_STRING`]).
fn typed(value: &str) -> (&'static str, &str) {
    if value.is_empty() {
        (EMPTY_STRING, "-")
    } else {
        ("String", value)
    }
}

fn sns_attribute(value: &str) -> Result<aws_sdk_sns::types::MessageAttributeValue, BrokerError> {
    let (data_type, value) = typed(value);
    aws_sdk_sns::types::MessageAttributeValue::builder()
        .data_type(data_type)
        .string_value(value)
        .build()
        .map_err(|e| BrokerError::Unexpected(Cause::context("an SNS message attribute", e)))
}

fn sns_attributes(
    attributes: Vec<(String, String)>,
) -> Result<HashMap<String, aws_sdk_sns::types::MessageAttributeValue>, BrokerError> {
    attributes
        .into_iter()
        .map(|(name, value)| Ok((name, sns_attribute(&value)?)))
        .collect()
}

/// The `Publish` of one message: the body, the group (the key) and deduplication (the id) ids, the
/// attributes.
///
/// # Errors
/// [`BrokerError::Refused`] for a header that cannot be an attribute, or too many of them.
pub(crate) fn publish_request(
    sns: &aws_sdk_sns::Client,
    topic_arn: &str,
    message: &Message,
) -> Result<aws_sdk_sns::operation::publish::builders::PublishFluentBuilder, BrokerError> {
    let (body, attributes) = attributes(message)?;
    Ok(sns
        .publish()
        .topic_arn(topic_arn)
        .message(body)
        .message_group_id(group_id(message))
        .message_deduplication_id(&message.id)
        .set_message_attributes(Some(sns_attributes(attributes)?)))
}

/// One entry of a `PublishBatch`, its id the message's index in the batch.
///
/// # Errors
/// As [`publish_request`].
pub(crate) fn publish_entry(
    index: usize,
    message: &Message,
) -> Result<aws_sdk_sns::types::PublishBatchRequestEntry, BrokerError> {
    let (body, attributes) = attributes(message)?;
    aws_sdk_sns::types::PublishBatchRequestEntry::builder()
        .id(index.to_string())
        .message(body)
        .message_group_id(group_id(message))
        .message_deduplication_id(&message.id)
        .set_message_attributes(Some(sns_attributes(attributes)?))
        .build()
        .map_err(|e| BrokerError::Unexpected(Cause::context("an SNS batch entry", e)))
}

/// The `SendMessage` of a message to a (dead-letter) queue, in the same format.
///
/// # Errors
/// As [`publish_request`].
pub(crate) fn send_request(
    sqs: &aws_sdk_sqs::Client,
    queue_url: &str,
    message: &Message,
) -> Result<aws_sdk_sqs::operation::send_message::builders::SendMessageFluentBuilder, BrokerError> {
    let (body, attributes) = attributes(message)?;
    let mut request = sqs
        .send_message()
        .queue_url(queue_url)
        .message_body(body)
        .message_group_id(group_id(message))
        .message_deduplication_id(&message.id);
    for (name, value) in attributes {
        let (data_type, value) = typed(&value);
        let attribute = aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type(data_type)
            .string_value(value)
            .build()
            .map_err(|e| BrokerError::Unexpected(Cause::context("an SQS message attribute", e)))?;
        request = request.message_attributes(name, attribute);
    }
    Ok(request)
}

/// The [`Message`] an SQS message carries.
///
/// # Errors
/// Why it is not one of ours (no event name, a bad time or base64 body): the consumer dead-letters
/// it with this reason.
pub(crate) fn decode(received: &aws_sdk_sqs::types::Message) -> Result<Message, String> {
    use aws_sdk_sqs::types::MessageSystemAttributeName;
    let mut attributes: HashMap<String, String> = received
        .message_attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| {
            let text = if value.data_type() == EMPTY_STRING {
                String::new()
            } else {
                value.string_value().unwrap_or_default().to_owned()
            };
            (name.clone(), text)
        })
        .collect();
    let name = attributes
        .remove(EVENT_NAME)
        .ok_or_else(|| format!("no {EVENT_NAME} message attribute"))?;
    let id = attributes
        .remove(MESSAGE_ID)
        .or_else(|| received.message_id().map(str::to_owned))
        .ok_or("no message id")?;
    let timestamp = match attributes.remove(TIMESTAMP) {
        Some(text) => DateTime::parse_from_rfc3339(&text)
            .map_err(|e| format!("{TIMESTAMP} {text:?}: {e}"))?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let key = received
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
        .map(|group| {
            if group == EMPTY_KEY_GROUP {
                String::new()
            } else {
                group.clone()
            }
        })
        .unwrap_or_default();
    let body = received.body().unwrap_or_default();
    let payload = match attributes.remove(PAYLOAD_ENCODING).as_deref() {
        None => body.as_bytes().to_vec(),
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("a base64 body that is not base64: {e}"))?,
        Some(other) => return Err(format!("unknown {PAYLOAD_ENCODING} {other:?}")),
    };
    Ok(Message {
        id,
        name,
        key,
        timestamp,
        payload,
        headers: attributes.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> Message {
        Message::new("eventCreated", "6b026ab2686c822a56b0fe36", b"{}".to_vec()).with_header(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        )
    }

    #[test]
    fn the_fixed_attributes_come_first_then_the_headers() {
        let (body, attributes) = attributes(&message()).expect("encoded");
        assert_eq!(body, "{}");
        let names: Vec<&str> = attributes.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["x-event-name", "x-message-id", "x-timestamp", "traceparent"]
        );
    }

    #[test]
    fn a_body_that_is_not_xml_text_travels_as_base64() {
        let mut binary = message();
        binary.payload = vec![0, 159, 146, 150];
        let (body, attributes) = attributes(&binary).expect("encoded");
        assert_eq!(body, "AJ+Slg==");
        assert!(attributes.contains(&(PAYLOAD_ENCODING.to_owned(), "base64".to_owned())));
    }

    #[test]
    fn too_many_headers_or_a_bad_name_are_refused_not_cut() {
        let mut crowded = message();
        for i in 0..7 {
            crowded.headers.insert(format!("h{i}"), "v".to_owned());
        }
        let refused = attributes(&crowded).expect_err("refused");
        assert!(matches!(refused, BrokerError::Refused(_)), "{refused}");
        assert!(
            refused.to_string().contains("10 message attributes"),
            "{refused}"
        );

        for bad in ["AWS.trace", "a..b", "has space", "x-event-name"] {
            let named = message().with_header(bad, "v");
            assert!(attributes(&named).is_err(), "{bad} accepted");
        }
    }

    /// What SQS delivers for `sent` (as raw delivery from the topic passes the attributes on).
    fn delivered(sent: &Message) -> aws_sdk_sqs::types::Message {
        use aws_sdk_sqs::types::{MessageAttributeValue, MessageSystemAttributeName};
        let (body, attributes) = attributes(sent).expect("encoded");
        let mut received = aws_sdk_sqs::types::Message::builder()
            .body(body)
            .message_id("sqs-message-id")
            .attributes(MessageSystemAttributeName::MessageGroupId, group_id(sent));
        for (name, value) in attributes {
            let (data_type, value) = typed(&value);
            let value = MessageAttributeValue::builder()
                .data_type(data_type)
                .string_value(value)
                .build()
                .expect("attribute");
            received = received.message_attributes(name, value);
        }
        received.build()
    }

    #[test]
    fn a_delivered_message_decodes_to_the_one_sent() {
        let sent = message().with_header("x-empty", "");
        assert_eq!(decode(&delivered(&sent)), Ok(sent));

        let mut binary = message();
        binary.payload = vec![0, 1, 2, 255];
        binary.key = String::new();
        assert_eq!(decode(&delivered(&binary)), Ok(binary));
    }

    #[test]
    fn a_message_that_is_not_ours_says_why() {
        let foreign = aws_sdk_sqs::types::Message::builder()
            .body("hello")
            .message_id("m")
            .build();
        let reason = decode(&foreign).expect_err("not ours");
        assert!(reason.contains("x-event-name"), "{reason}");
    }

    #[test]
    fn attribute_names_follow_the_services_rules() {
        assert!(is_attribute_name("traceparent"));
        assert!(is_attribute_name("x-dead-letter-reason"));
        assert!(!is_attribute_name(".x"));
        assert!(!is_attribute_name("amazon.x"));
        assert!(!is_attribute_name(""));
    }
}
