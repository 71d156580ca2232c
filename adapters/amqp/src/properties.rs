//! Envelope fields <-> AMQP message properties. The procedure a request calls travels in the
//! `type` property (lapin: `with_type`, read back as `kind`), which the tutorial's clients
//! leave empty. The trace context travels in a `traceparent` header, as W3C's AMQP binding
//! and OpenTelemetry's instrumentations put it; an error reply's mark in the `fibrpc-error`
//! and `fibrpc-error-message` headers.

use std::time::Duration;

use fibrpc_ports::{Envelope, ReplyError, TransportError};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::BasicProperties;

/// AMQP short strings hold at most 255 bytes.
const SHORT_STRING_MAX: usize = 255;

/// The header carrying [`Envelope::traceparent`].
const TRACEPARENT: &str = "traceparent";
/// The headers carrying [`Envelope::error`]: its kind and its message.
const ERROR_KIND: &str = "fibrpc-error";
const ERROR_MESSAGE: &str = "fibrpc-error-message";
/// The header saying a request's caller reads coalesced replies ([`Envelope::reads_batches`]):
/// `1`, or absent.
const READS_BATCHES: &str = "fibrpc-batch-replies";

fn short(field: &str, value: &str) -> Result<ShortString, TransportError> {
    if value.len() > SHORT_STRING_MAX {
        return Err(TransportError::Malformed {
            reason: format!(
                "{field} is {} bytes; AMQP allows {SHORT_STRING_MAX}",
                value.len()
            ),
        });
    }
    Ok(value.into())
}

/// The properties of an outgoing message. `expiration` is the deadline in the ports' wire form
/// (the milliseconds left), so the broker drops a request nobody waits for any more.
pub(crate) fn to_properties(envelope: &Envelope) -> Result<BasicProperties, TransportError> {
    let mut properties = BasicProperties::default();
    if let Some(id) = &envelope.correlation_id {
        properties = properties.with_correlation_id(short("correlation_id", id)?);
    }
    if let Some(reply_to) = &envelope.reply_to {
        properties = properties.with_reply_to(short("reply_to", reply_to)?);
    }
    if let Some(content_type) = &envelope.content_type {
        properties = properties.with_content_type(short("content_type", content_type)?);
    }
    if let Some(procedure) = &envelope.procedure {
        properties = properties.with_type(short("procedure", procedure)?);
    }
    if let Some(millis) = envelope.deadline_to_wire_millis() {
        properties = properties.with_expiration(millis.to_string().into());
    }
    let mut headers = FieldTable::default();
    let mut header = |name: &str, value: &str| {
        headers.insert(name.into(), AMQPValue::LongString(value.into()));
    };
    if let Some(traceparent) = &envelope.traceparent {
        header(TRACEPARENT, traceparent);
    }
    if let Some(error) = &envelope.error {
        header(ERROR_KIND, &error.kind);
        header(ERROR_MESSAGE, &error.message);
    }
    if envelope.reads_batches {
        header(READS_BATCHES, "1");
    }
    if !headers.inner().is_empty() {
        properties = properties.with_headers(headers);
    }
    Ok(properties)
}

/// The envelope of an incoming message. A deadline is rebuilt from `expiration` as seen on
/// arrival (time spent queued is not known here).
pub(crate) fn to_envelope(properties: &BasicProperties, body: Vec<u8>) -> Envelope {
    let text = |value: &Option<ShortString>| value.as_ref().map(|value| value.as_str().to_owned());
    let deadline = properties
        .expiration()
        .as_ref()
        .and_then(|millis| millis.as_str().parse::<u64>().ok())
        .map(|millis| Envelope::deadline_from_wire_millis(millis, Duration::ZERO));
    Envelope {
        correlation_id: text(properties.correlation_id()),
        reply_to: text(properties.reply_to()),
        content_type: text(properties.content_type()),
        procedure: text(properties.kind()),
        deadline,
        body,
        traceparent: header(properties, TRACEPARENT),
        error: header(properties, ERROR_KIND).map(|kind| ReplyError {
            kind,
            message: header(properties, ERROR_MESSAGE).unwrap_or_default(),
        }),
        reads_batches: header(properties, READS_BATCHES).as_deref() == Some("1"),
    }
}

/// A header as text, whether sent as a long or a short string; anything else is left for the
/// protocol to find missing.
fn header(properties: &BasicProperties, name: &str) -> Option<String> {
    match properties.headers().as_ref()?.inner().get(name)? {
        AMQPValue::LongString(value) => String::from_utf8(value.as_bytes().to_vec()).ok(),
        AMQPValue::ShortString(value) => Some(value.as_str().to_owned()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[test]
    fn fields_survive_the_round_trip() {
        let envelope = Envelope {
            correlation_id: Some("id".into()),
            reply_to: Some("amq.gen-x".into()),
            content_type: Some("text/plain".into()),
            procedure: Some("text.count".into()),
            deadline: Some(Instant::now() + Duration::from_secs(5)),
            body: b"30".to_vec(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            error: Some(ReplyError {
                kind: "invalid-request".into(),
                message: "invalid request: not a number".into(),
            }),
            reads_batches: true,
        };
        let properties = to_properties(&envelope).unwrap();
        let millis: u64 = properties
            .expiration()
            .as_ref()
            .unwrap()
            .as_str()
            .parse()
            .unwrap();
        assert!((4000..=5000).contains(&millis), "{millis}");
        let back = to_envelope(&properties, b"30".to_vec());
        assert_eq!(back.correlation_id, envelope.correlation_id);
        assert_eq!(back.reply_to, envelope.reply_to);
        assert_eq!(back.content_type, envelope.content_type);
        assert_eq!(
            properties.kind().as_ref().map(|kind| kind.as_str()),
            Some("text.count")
        );
        assert_eq!(back.procedure, envelope.procedure);
        assert_eq!(back.traceparent, envelope.traceparent);
        assert_eq!(back.error, envelope.error);
        assert!(back.deadline.is_some());
    }

    #[test]
    fn absent_fields_stay_absent_and_long_ones_are_refused() {
        let back = to_envelope(&to_properties(&Envelope::with_body("1")).unwrap(), vec![]);
        assert_eq!(back, Envelope::default());
        let long = Envelope {
            correlation_id: Some("x".repeat(256)),
            ..Envelope::default()
        };
        assert!(matches!(
            to_properties(&long),
            Err(TransportError::Malformed { .. })
        ));
    }
}
