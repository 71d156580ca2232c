//! Envelopes as Redis data: named fields (a stream entry's field-value pairs; for a reply, the
//! same pairs packed into one list element). An absent envelope field is an absent pair.

use std::collections::HashMap;
use std::time::Duration;

use fibrpc_ports::{Envelope, ReplyError};

const CORRELATION_ID: &str = "correlation_id";
const REPLY_TO: &str = "reply_to";
const CONTENT_TYPE: &str = "content_type";
const PROCEDURE: &str = "procedure";
/// The W3C trace context, under W3C's name for it.
const TRACEPARENT: &str = "traceparent";
/// The deadline in the ports' wire form: milliseconds left when the message was sent.
const DEADLINE_MS: &str = "deadline_ms";
const BODY: &str = "body";
/// An error reply's mark ([`Envelope::error`]): its kind and its message.
const ERROR_KIND: &str = "fibrpc-error";
const ERROR_MESSAGE: &str = "fibrpc-error-message";
/// Says a request's caller reads coalesced replies ([`Envelope::reads_batches`]): `1`, or
/// absent.
const READS_BATCHES: &str = "fibrpc-batch-replies";
/// Set on a request put back after a delivery that was not acknowledged.
pub(crate) const REDELIVERED: &str = "redelivered";

/// The field-value pairs of `envelope`, sent now.
pub(crate) fn to_pairs(envelope: &Envelope) -> Vec<(&'static str, Vec<u8>)> {
    let text = [
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
    let mut pairs: Vec<(&'static str, Vec<u8>)> = text
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.clone()?.into_bytes())))
        .collect();
    if let Some(millis) = envelope.deadline_to_wire_millis() {
        pairs.push((DEADLINE_MS, millis.to_string().into_bytes()));
    }
    if envelope.reads_batches {
        pairs.push((READS_BATCHES, b"1".to_vec()));
    }
    pairs.push((BODY, envelope.body.clone()));
    pairs
}

/// The envelope `pairs` carry, received now after `queued` in the broker; the reason when
/// they are not an envelope. Pairs of other names (`redelivered`) are left out.
pub(crate) fn from_pairs(
    mut pairs: HashMap<String, Vec<u8>>,
    queued: Duration,
) -> Result<Envelope, String> {
    let mut text = |name: &str| {
        pairs
            .remove(name)
            .map(|value| String::from_utf8(value).map_err(|_| format!("{name} is not UTF-8")))
            .transpose()
    };
    let correlation_id = text(CORRELATION_ID)?;
    let reply_to = text(REPLY_TO)?;
    let content_type = text(CONTENT_TYPE)?;
    let procedure = text(PROCEDURE)?;
    let traceparent = text(TRACEPARENT)?;
    let error_kind = text(ERROR_KIND)?;
    let error_message = text(ERROR_MESSAGE)?;
    let deadline = text(DEADLINE_MS)?
        .map(|left| {
            left.parse::<u64>()
                .map_err(|_| format!("{DEADLINE_MS} is not a number of milliseconds: {left:?}"))
        })
        .transpose()?
        .map(|left| Envelope::deadline_from_wire_millis(left, queued));
    let reads_batches = pairs.remove(READS_BATCHES).as_deref() == Some(b"1".as_slice());
    let body = pairs.remove(BODY).ok_or("no body")?;
    Ok(Envelope {
        correlation_id,
        reply_to,
        content_type,
        procedure,
        deadline,
        body,
        traceparent,
        error: error_kind.map(|kind| ReplyError {
            kind,
            message: error_message.unwrap_or_default(),
        }),
        reads_batches,
    })
}

/// `pairs` packed into one list element: per pair, the name's length (one byte), the name,
/// the value's length (four bytes, big-endian) and the value.
pub(crate) fn pack(pairs: &[(&'static str, Vec<u8>)]) -> Vec<u8> {
    let size = pairs.iter().map(|(n, v)| 5 + n.len() + v.len()).sum();
    let mut packed = Vec::with_capacity(size);
    for (name, value) in pairs {
        packed.push(name.len() as u8);
        packed.extend_from_slice(name.as_bytes());
        let length = u32::try_from(value.len()).unwrap_or(u32::MAX);
        packed.extend_from_slice(&length.to_be_bytes());
        packed.extend_from_slice(&value[..length as usize]);
    }
    packed
}

/// The pairs of a packed list element; the reason when it is not one.
pub(crate) fn unpack(mut packed: &[u8]) -> Result<HashMap<String, Vec<u8>>, String> {
    let mut pairs = HashMap::new();
    while let Some((&name_length, rest)) = packed.split_first() {
        let (name, rest) = split(rest, usize::from(name_length))?;
        let (length, rest) = split(rest, 4)?;
        let length = u32::from_be_bytes(length.try_into().map_err(|_| "cut short")?);
        let (value, rest) = split(rest, length as usize)?;
        let name = String::from_utf8(name.to_vec()).map_err(|_| "a field name is not UTF-8")?;
        pairs.insert(name, value.to_vec());
        packed = rest;
    }
    Ok(pairs)
}

fn split(bytes: &[u8], at: usize) -> Result<(&[u8], &[u8]), String> {
    (bytes.len() >= at)
        .then(|| bytes.split_at(at))
        .ok_or_else(|| "cut short".to_owned())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    fn round_trip(envelope: &Envelope, queued: Duration) -> Envelope {
        let packed = pack(&to_pairs(envelope));
        from_pairs(unpack(&packed).unwrap(), queued).unwrap()
    }

    #[test]
    fn every_field_survives_and_absent_ones_stay_absent() {
        let bare = Envelope::with_body(vec![0, 255, 10]);
        assert_eq!(round_trip(&bare, Duration::ZERO), bare);
        let full = Envelope {
            correlation_id: Some("c".to_owned()),
            reply_to: Some("fibrpc:reply:x".to_owned()),
            content_type: Some("text/plain".to_owned()),
            procedure: Some("fib".to_owned()),
            deadline: None,
            body: b"30".to_vec(),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
            error: Some(ReplyError {
                kind: "unknown-procedure".to_owned(),
                message: "no procedure named \"x\" on this server".to_owned(),
            }),
            reads_batches: true,
        };
        assert_eq!(round_trip(&full, Duration::ZERO), full);
    }

    #[test]
    fn the_deadline_loses_the_time_queued() {
        let sent = Envelope {
            deadline: Some(Instant::now() + Duration::from_secs(10)),
            ..Envelope::default()
        };
        let arrived = round_trip(&sent, Duration::from_secs(4)).deadline.unwrap();
        let left = arrived.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(5) && left <= Duration::from_secs(6),
            "{left:?}"
        );
        let overdue = round_trip(&sent, Duration::from_secs(12));
        assert!(
            overdue.is_expired_at(Instant::now()),
            "a request queued past its deadline is overdue"
        );
    }

    #[test]
    fn garbage_is_malformed_not_a_panic() {
        assert!(unpack(&[200, 1, 2]).is_err());
        assert!(from_pairs(HashMap::new(), Duration::ZERO).is_err());
        let bad_deadline = HashMap::from([
            (DEADLINE_MS.to_owned(), b"soon".to_vec()),
            (BODY.to_owned(), Vec::new()),
        ]);
        assert!(from_pairs(bad_deadline, Duration::ZERO).is_err());
    }
}
