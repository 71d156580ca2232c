//! Envelope fields <-> NATS headers. An absent field is an absent header.

use std::str::FromStr;
use std::time::{Duration, Instant};

use async_nats::{HeaderMap, HeaderValue};
use fibrpc_ports::{Envelope, TransportError};

use crate::errors;

const CORRELATION_ID: &str = "Fibrpc-Correlation-Id";
const REPLY_TO: &str = "Fibrpc-Reply-To";
const CONTENT_TYPE: &str = "Content-Type";
/// The procedure a request calls; absent for the unnamed one (fib).
const PROCEDURE: &str = "Fibrpc-Procedure";
/// The milliseconds left until the deadline when the message was sent. An `Instant` means
/// nothing to another process; a duration does, once the receiver takes off how long the
/// message waited (see [`to_envelope`]).
const DEADLINE: &str = "Fibrpc-Deadline-Ms";
/// The W3C trace context, under the name W3C and OpenTelemetry give it.
const TRACEPARENT: &str = "traceparent";

/// The headers carrying `envelope`'s fields. Fails on a field a header cannot hold (async-nats
/// would panic on it).
pub(crate) fn to_headers(envelope: &Envelope) -> Result<HeaderMap, TransportError> {
    let mut headers = HeaderMap::new();
    let fields = [
        (CORRELATION_ID, &envelope.correlation_id),
        (REPLY_TO, &envelope.reply_to),
        (CONTENT_TYPE, &envelope.content_type),
        (PROCEDURE, &envelope.procedure),
        (TRACEPARENT, &envelope.traceparent),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            let value = HeaderValue::from_str(value).map_err(|_| errors::header(name))?;
            headers.insert(name, value);
        }
    }
    if let Some(deadline) = envelope.deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        // Rounded up, so that a deadline not yet reached is not made a past one.
        let millis = left.as_micros().div_ceil(1000);
        headers.insert(DEADLINE, millis.to_string());
    }
    Ok(headers)
}

/// The envelope of a message that arrived `waited` after it was sent: the deadline is what
/// was left when sent, less `waited`. For a JetStream request `waited` is the time since the
/// stream stored it (so only the NATS server's and this host's clocks need agree, not the
/// sender's); for a core NATS reply, which does not wait anywhere, it is zero.
pub(crate) fn to_envelope(
    headers: Option<&HeaderMap>,
    body: Vec<u8>,
    waited: Duration,
) -> Envelope {
    let field = |name: &str| {
        headers
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str().to_owned())
    };
    let deadline = field(DEADLINE)
        .and_then(|millis| millis.parse::<u64>().ok())
        .map(|millis| Instant::now() + Duration::from_millis(millis).saturating_sub(waited));
    Envelope {
        correlation_id: field(CORRELATION_ID),
        reply_to: field(REPLY_TO),
        content_type: field(CONTENT_TYPE),
        procedure: field(PROCEDURE),
        deadline,
        body,
        traceparent: field(TRACEPARENT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_absent_ones_stay_absent() {
        let full = Envelope {
            correlation_id: Some("id".to_owned()),
            reply_to: Some("_INBOX.x".to_owned()),
            content_type: Some("text/plain".to_owned()),
            procedure: Some("text.count".to_owned()),
            deadline: None,
            body: b"30".to_vec(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        };
        let headers = to_headers(&full).unwrap();
        assert_eq!(
            to_envelope(Some(&headers), b"30".to_vec(), Duration::ZERO),
            full
        );
        let bare = Envelope::with_body("x");
        let headers = to_headers(&bare).unwrap();
        assert!(headers.is_empty());
        assert_eq!(
            to_envelope(Some(&headers), b"x".to_vec(), Duration::ZERO),
            bare
        );
        assert_eq!(to_envelope(None, b"x".to_vec(), Duration::ZERO), bare);
    }

    #[test]
    fn the_deadline_loses_the_time_waited() {
        let envelope = Envelope {
            deadline: Some(Instant::now() + Duration::from_secs(10)),
            ..Envelope::default()
        };
        let headers = to_headers(&envelope).unwrap();
        let got = to_envelope(Some(&headers), Vec::new(), Duration::from_secs(4))
            .deadline
            .unwrap();
        let left = got.saturating_duration_since(Instant::now());
        assert!(left > Duration::from_secs(5) && left <= Duration::from_secs(6));
        let expired = to_envelope(Some(&headers), Vec::new(), Duration::from_secs(11));
        assert!(expired.is_expired_at(Instant::now()));
    }

    #[test]
    fn a_line_break_is_malformed_not_a_panic() {
        let envelope = Envelope {
            correlation_id: Some("a\r\nb".to_owned()),
            ..Envelope::default()
        };
        assert!(matches!(
            to_headers(&envelope),
            Err(TransportError::Malformed { .. })
        ));
    }
}
