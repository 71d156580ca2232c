//! Envelope fields <-> NATS headers. An absent field is an absent header.

use std::str::FromStr;
use std::time::Duration;

use async_nats::{HeaderMap, HeaderValue};
use fibrpc_ports::{Envelope, ReplyError, TransportError};

use crate::errors;

const CORRELATION_ID: &str = "Fibrpc-Correlation-Id";
const REPLY_TO: &str = "Fibrpc-Reply-To";
const CONTENT_TYPE: &str = "Content-Type";
/// The procedure a request calls; absent for the unnamed one (fib).
const PROCEDURE: &str = "Fibrpc-Procedure";
/// The deadline in the ports' wire form: the milliseconds left when the message was sent
/// (`Envelope::deadline_to_wire_millis`), less, on arrival, how long it waited (see
/// [`to_envelope`]).
const DEADLINE: &str = "Fibrpc-Deadline-Ms";
/// The W3C trace context, under the name W3C and OpenTelemetry give it.
const TRACEPARENT: &str = "traceparent";
/// An error reply's mark ([`Envelope::error`]): its kind and its message.
const ERROR_KIND: &str = "fibrpc-error";
const ERROR_MESSAGE: &str = "fibrpc-error-message";
/// Says a request's caller reads coalesced replies ([`Envelope::reads_batches`]): `1`, or
/// absent.
const READS_BATCHES: &str = "Fibrpc-Batch-Replies";
/// The same mark as the NATS services API (ADR-32) writes it, for NATS-native clients.
const SERVICE_ERROR: &str = "Nats-Service-Error";
const SERVICE_ERROR_CODE: &str = "Nats-Service-Error-Code";

/// The services API's code for an error reply: 500 when the server failed (`internal`), 400
/// for what the request asked (the procedure's own error, a bad or unknown request).
pub(crate) fn service_error_code(error: &ReplyError) -> u16 {
    if error.kind == "internal" {
        500
    } else {
        400
    }
}

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
        (
            ERROR_KIND,
            &envelope.error.as_ref().map(|error| error.kind.clone()),
        ),
        (
            ERROR_MESSAGE,
            &envelope.error.as_ref().map(|error| error.message.clone()),
        ),
    ];
    for (name, value) in fields {
        if let Some(value) = value {
            let value = HeaderValue::from_str(value).map_err(|_| errors::header(name))?;
            headers.insert(name, value);
        }
    }
    if let Some(error) = &envelope.error {
        let message =
            HeaderValue::from_str(&error.message).map_err(|_| errors::header(SERVICE_ERROR))?;
        headers.insert(SERVICE_ERROR, message);
        headers.insert(SERVICE_ERROR_CODE, service_error_code(error).to_string());
    }
    if let Some(millis) = envelope.deadline_to_wire_millis() {
        headers.insert(DEADLINE, millis.to_string());
    }
    if envelope.reads_batches {
        headers.insert(READS_BATCHES, "1");
    }
    Ok(headers)
}

/// Why a request cannot be read as an envelope, if it cannot: a deadline header that is no
/// number of milliseconds (a foreign client's, say). Serving it without its deadline would
/// answer a caller that may have long stopped waiting.
pub(crate) fn unreadable(headers: Option<&HeaderMap>) -> Option<String> {
    let value = headers?.get(DEADLINE)?.as_str();
    match value.parse::<u64>() {
        Ok(_) => None,
        Err(_) => Some(format!(
            "{DEADLINE} is not a number of milliseconds: {value:?}"
        )),
    }
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
        .map(|millis| Envelope::deadline_from_wire_millis(millis, waited));
    Envelope {
        correlation_id: field(CORRELATION_ID),
        reply_to: field(REPLY_TO),
        content_type: field(CONTENT_TYPE),
        procedure: field(PROCEDURE),
        deadline,
        body,
        traceparent: field(TRACEPARENT),
        error: field(ERROR_KIND).map(|kind| ReplyError {
            kind,
            message: field(ERROR_MESSAGE).unwrap_or_default(),
        }),
        reads_batches: field(READS_BATCHES).as_deref() == Some("1"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

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
            error: Some(ReplyError {
                kind: "error".to_owned(),
                message: "n = 1001 is above the bound 1000".to_owned(),
            }),
            reads_batches: true,
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
    fn a_deadline_that_is_no_number_makes_a_request_unreadable() {
        let mut headers = HeaderMap::new();
        assert_eq!(unreadable(Some(&headers)), None);
        headers.insert(DEADLINE, "1500");
        assert_eq!(unreadable(Some(&headers)), None);
        headers.insert(DEADLINE, "soon");
        assert!(unreadable(Some(&headers)).is_some_and(|why| why.contains("soon")));
        assert_eq!(unreadable(None), None);
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
