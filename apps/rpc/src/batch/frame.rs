//! The batch format (docs/wire.md, "Several calls in one message"): the number of items (4
//! bytes, big-endian), then the items back to back, each its length (4 bytes, big-endian)
//! then its fields; a field is its name's length (1 byte),
//! the name, its value's length (4 bytes, big-endian), the value. Requests and replies alike.
//!
//! Reading never panics and never trusts a length: whatever does not fit is a [`FrameError`].

use std::time::Instant;

use fibrpc_ports::{Envelope, ReplyError};

/// The content type of a message that carries several calls or replies.
pub const BATCH_CONTENT_TYPE: &str = "application/vnd.fibrpc.batch";

const CORRELATION_ID: &str = "correlation_id";
const CONTENT_TYPE: &str = "content_type";
const PROCEDURE: &str = "procedure";
const DEADLINE_MS: &str = "deadline_ms";
const TRACEPARENT: &str = "traceparent";
const ERROR_KIND: &str = "fibrpc-error";
const ERROR_MESSAGE: &str = "fibrpc-error-message";
const BODY: &str = "body";

/// Why a message of the batch content type cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("a batch with no items")]
    Empty,
    #[error("the batch says it holds {said} items but holds {found}")]
    Count { said: usize, found: usize },
    #[error("the batch ends inside item {item} (byte {at})")]
    Truncated { item: usize, at: usize },
    #[error("item {item}'s field {field:?} is not UTF-8")]
    NotUtf8 { item: usize, field: &'static str },
    #[error("item {item}'s deadline_ms is not a number of milliseconds")]
    BadDeadline { item: usize },
    #[error("item {item} has no body")]
    NoBody { item: usize },
}

/// True when `envelope` is a batch (its content type, parameters and case aside).
pub fn is_batch(envelope: &Envelope) -> bool {
    envelope
        .content_type
        .as_deref()
        .is_some_and(|content_type| {
            let essence = content_type.split(';').next().unwrap_or_default().trim();
            essence.eq_ignore_ascii_case(BATCH_CONTENT_TYPE)
        })
}

/// The size `envelope` takes as an item, for byte bounds.
pub fn item_size(envelope: &Envelope) -> usize {
    let field = |name: &str, len: usize| 5 + name.len() + len;
    let text =
        |name: &str, value: &Option<String>| value.as_ref().map_or(0, |v| field(name, v.len()));
    4 + text(CORRELATION_ID, &envelope.correlation_id)
        + text(CONTENT_TYPE, &envelope.content_type)
        + text(PROCEDURE, &envelope.procedure)
        + text(TRACEPARENT, &envelope.traceparent)
        + envelope.deadline.map_or(0, |_| field(DEADLINE_MS, 20))
        + envelope.error.as_ref().map_or(0, |e| {
            field(ERROR_KIND, e.kind.len()) + field(ERROR_MESSAGE, e.message.len())
        })
        + field(BODY, envelope.body.len())
}

/// The items, written as one batch body. Each item's deadline is written as the time left
/// now ([`Envelope::deadline_to_wire_millis`]); its `reply_to` and `reads_batches` are the
/// message's, not the item's.
pub fn encode<'a>(items: impl IntoIterator<Item = &'a Envelope>) -> Vec<u8> {
    let mut out = vec![0; 4];
    let mut count = 0;
    for item in items {
        count += 1;
        let start = out.len();
        out.extend_from_slice(&[0; 4]);
        let mut put = |name: &str, value: &[u8]| {
            out.push(name.len() as u8);
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(&wire_len(value.len()).to_be_bytes());
            out.extend_from_slice(value);
        };
        let texts = [
            (CORRELATION_ID, &item.correlation_id),
            (CONTENT_TYPE, &item.content_type),
            (PROCEDURE, &item.procedure),
            (TRACEPARENT, &item.traceparent),
        ];
        for (name, value) in texts {
            if let Some(value) = value {
                put(name, value.as_bytes());
            }
        }
        if let Some(millis) = item.deadline_to_wire_millis() {
            put(DEADLINE_MS, millis.to_string().as_bytes());
        }
        if let Some(error) = &item.error {
            put(ERROR_KIND, error.kind.as_bytes());
            put(ERROR_MESSAGE, error.message.as_bytes());
        }
        put(BODY, &item.body);
        let len = wire_len(out.len() - start - 4);
        out[start..start + 4].copy_from_slice(&len.to_be_bytes());
    }
    out[..4].copy_from_slice(&wire_len(count).to_be_bytes());
    out
}

/// A length as the 4 bytes the format gives it. Bodies are bounded far below 4 GiB by every
/// broker; a larger one would be refused by the broker before it is read.
fn wire_len(len: usize) -> u32 {
    u32::try_from(len).unwrap_or(u32::MAX)
}

/// One item as read: its fields, and its deadline as the milliseconds left when sent.
#[derive(Debug)]
pub struct Item {
    pub envelope: Envelope,
    pub deadline_ms: Option<u64>,
}

/// The items of a batch body, in order.
///
/// # Errors
/// A [`FrameError`] when the body is not a batch: lengths that run past its end, text that
/// is not UTF-8, a deadline that is no number, an item without a body, no item at all.
/// Fields of other names are skipped (later versions may add some).
pub fn decode(body: &[u8]) -> Result<Vec<Item>, FrameError> {
    let mut reader = Reader { body, at: 0 };
    let said = reader.len(0)?;
    if said == 0 {
        return Err(FrameError::Empty);
    }
    // Not trusted for more than a small allocation.
    let mut items = Vec::with_capacity(said.min(64));
    while reader.at < body.len() {
        let index = items.len();
        let len = reader.len(index)?;
        let item = reader.take(len, index)?;
        items.push(decode_item(item, index, reader.at - len)?);
    }
    if items.len() != said {
        return Err(FrameError::Count {
            said,
            found: items.len(),
        });
    }
    Ok(items)
}

fn decode_item(bytes: &[u8], item: usize, offset: usize) -> Result<Item, FrameError> {
    let mut reader = Reader { body: bytes, at: 0 };
    let mut envelope = Envelope::default();
    let mut deadline_ms = None;
    let mut body = None;
    let mut error_kind = None;
    let mut error_message = None;
    let truncated = |at: usize| FrameError::Truncated {
        item,
        at: offset + at,
    };
    while reader.at < bytes.len() {
        let name_len = usize::from(
            *reader
                .take(1, item)
                .map_err(|_| truncated(reader.at))?
                .first()
                .unwrap_or(&0),
        );
        let name = reader
            .take(name_len, item)
            .map_err(|_| truncated(reader.at))?;
        let value_len = reader.len(item).map_err(|_| truncated(reader.at))?;
        let value = reader
            .take(value_len, item)
            .map_err(|_| truncated(reader.at))?;
        let text = |field: &'static str| {
            std::str::from_utf8(value)
                .map(str::to_owned)
                .map_err(|_| FrameError::NotUtf8 { item, field })
        };
        match name {
            n if n == CORRELATION_ID.as_bytes() => {
                envelope.correlation_id = Some(text(CORRELATION_ID)?)
            }
            n if n == CONTENT_TYPE.as_bytes() => envelope.content_type = Some(text(CONTENT_TYPE)?),
            n if n == PROCEDURE.as_bytes() => envelope.procedure = Some(text(PROCEDURE)?),
            n if n == TRACEPARENT.as_bytes() => envelope.traceparent = Some(text(TRACEPARENT)?),
            n if n == ERROR_KIND.as_bytes() => error_kind = Some(text(ERROR_KIND)?),
            n if n == ERROR_MESSAGE.as_bytes() => error_message = Some(text(ERROR_MESSAGE)?),
            n if n == DEADLINE_MS.as_bytes() => {
                let millis = text(DEADLINE_MS)?
                    .parse::<u64>()
                    .map_err(|_| FrameError::BadDeadline { item })?;
                deadline_ms = Some(millis);
            }
            n if n == BODY.as_bytes() => body = Some(value.to_vec()),
            _ => {}
        }
    }
    envelope.body = body.ok_or(FrameError::NoBody { item })?;
    envelope.error = error_kind.map(|kind| ReplyError {
        kind,
        message: error_message.unwrap_or_default(),
    });
    Ok(Item {
        envelope,
        deadline_ms,
    })
}

/// Each item's deadline, from the message's: the message's deadline is its longest item's
/// (the broker's expiration applies to the whole message), and an item's falls as much
/// earlier as its time left was shorter when sent. Without a message deadline the items'
/// count from now.
pub fn item_deadlines(items: &mut [Item], message_deadline: Option<Instant>) {
    let longest = items.iter().filter_map(|item| item.deadline_ms).max();
    let (Some(longest), now) = (longest, Instant::now()) else {
        return;
    };
    let base = message_deadline.unwrap_or_else(|| now + std::time::Duration::from_millis(longest));
    for item in items.iter_mut() {
        if let Some(millis) = item.deadline_ms {
            let earlier = std::time::Duration::from_millis(longest - millis);
            item.envelope.deadline = Some(base.checked_sub(earlier).unwrap_or(now));
        }
    }
}

struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize, item: usize) -> Result<&'a [u8], FrameError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|&end| end <= self.body.len())
            .ok_or(FrameError::Truncated { item, at: self.at })?;
        let taken = &self.body[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn len(&mut self, item: usize) -> Result<usize, FrameError> {
        let bytes = self.take(4, item)?;
        let mut len = [0; 4];
        len.copy_from_slice(bytes);
        usize::try_from(u32::from_be_bytes(len))
            .map_err(|_| FrameError::Truncated { item, at: self.at })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;

    fn call(id: &str, body: &[u8]) -> Envelope {
        Envelope {
            correlation_id: Some(id.to_owned()),
            content_type: Some("application/json".to_owned()),
            procedure: Some("text.count".to_owned()),
            deadline: Some(Instant::now() + Duration::from_secs(5)),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            body: body.to_vec(),
            ..Envelope::default()
        }
    }

    #[test]
    fn items_round_trip_with_every_field() {
        let mut reply = Envelope::with_body("oops");
        reply.correlation_id = Some("c".into());
        reply.error = Some(ReplyError {
            kind: "invalid-request".into(),
            message: "no".into(),
        });
        let sent = [call("a", b"1"), call("b", b""), reply.clone()];
        let body = encode(&sent);
        let items = decode(&body).unwrap();
        assert_eq!(items.len(), 3);
        for (item, sent) in items.iter().zip(&sent) {
            let mut expected = sent.clone();
            expected.deadline = None;
            assert_eq!(item.envelope, expected);
        }
        let millis = items[0].deadline_ms.unwrap();
        assert!((4_900..=5_000).contains(&millis), "{millis}");
        assert_eq!(items[2].deadline_ms, None);
        assert_eq!(
            items
                .iter()
                .map(|i| i.envelope.error.is_some())
                .collect::<Vec<_>>(),
            [false, false, true]
        );
        // The size bound counts at least what is written.
        assert!(sent.iter().map(item_size).sum::<usize>() >= body.len());
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        // One item: a correlation id "x" and the body "y" (docs/wire.md's example).
        let body = encode(&[Envelope {
            correlation_id: Some("x".into()),
            ..Envelope::with_body("y")
        }]);
        let mut expected = vec![0, 0, 0, 1, 0, 0, 0, 30];
        expected.extend_from_slice(b"\x0ecorrelation_id\0\0\0\x01x");
        expected.extend_from_slice(b"\x04body\0\0\0\x01y");
        assert_eq!(body, expected);
    }

    #[test]
    fn unreadable_batches_are_clear_errors() {
        let body = encode(&[call("a", b"123")]);
        assert!(matches!(decode(&[]), Err(FrameError::Truncated { .. })));
        assert_eq!(decode(&[0, 0, 0, 0]).unwrap_err(), FrameError::Empty);
        assert!(matches!(
            decode(&body[..body.len() - 1]),
            Err(FrameError::Truncated { item: 0, .. })
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 1, 0, 0, 0, 9, 1]),
            Err(FrameError::Truncated { .. })
        ));
        assert_eq!(
            decode(&body[..4]).unwrap_err(),
            FrameError::Count { said: 1, found: 0 }
        );
        // An item whose field runs past the item's end, though not past the message's.
        let mut short = body.clone();
        short[3] = 2;
        short.extend_from_slice(&[0, 0, 0, 3, 4, b'b', b'o', b'd']);
        assert!(matches!(
            decode(&short),
            Err(FrameError::Truncated { item: 1, .. })
        ));
        let no_body = [0, 0, 0, 1, 0, 0, 0, 0];
        assert_eq!(
            decode(&no_body).unwrap_err(),
            FrameError::NoBody { item: 0 }
        );
        let mut bad_deadline = vec![0, 0, 0, 1, 0, 0, 0, 26];
        bad_deadline.extend_from_slice(b"\x0bdeadline_ms\0\0\0\x02-1\x04body\0\0\0\0");
        assert_eq!(
            decode(&bad_deadline).unwrap_err(),
            FrameError::BadDeadline { item: 0 }
        );
        let mut not_utf8 = vec![0, 0, 0, 1, 0, 0, 0, 23];
        not_utf8.extend_from_slice(b"\x09procedure\0\0\0\x01\xff\x04body\0\0\0\0");
        assert_eq!(
            decode(&not_utf8).unwrap_err(),
            FrameError::NotUtf8 {
                item: 0,
                field: "procedure"
            }
        );
    }

    #[test]
    fn an_items_deadline_falls_as_much_before_the_messages_as_it_was_shorter() {
        let sent = [
            Envelope {
                deadline: Some(Instant::now() + Duration::from_secs(10)),
                ..Envelope::with_body("long")
            },
            Envelope {
                deadline: Some(Instant::now() + Duration::from_secs(2)),
                ..Envelope::with_body("short")
            },
            Envelope::with_body("none"),
        ];
        let mut items = decode(&encode(&sent)).unwrap();
        let message = Instant::now() + Duration::from_secs(7);
        item_deadlines(&mut items, Some(message));
        assert_eq!(items[0].envelope.deadline, Some(message));
        let short = message - items[1].envelope.deadline.unwrap();
        assert!(
            short >= Duration::from_millis(7_990) && short <= Duration::from_millis(8_010),
            "{short:?}"
        );
        assert_eq!(items[2].envelope.deadline, None);
    }

    #[test]
    fn the_content_type_is_recognised_with_parameters_and_any_case() {
        let mut envelope = Envelope::with_body("");
        assert!(!is_batch(&envelope));
        envelope.content_type = Some("Application/VND.fibrpc.batch; v=1".into());
        assert!(is_batch(&envelope));
        envelope.content_type = Some("application/json".into());
        assert!(!is_batch(&envelope));
    }

    proptest! {
        #[test]
        fn any_bytes_decode_or_fail_without_panicking(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode(&body);
        }

        #[test]
        fn any_items_round_trip(
            calls in proptest::collection::vec(
                (proptest::option::of("[ -~]{0,40}"), proptest::option::of("[a-z./]{1,20}"), proptest::collection::vec(any::<u8>(), 0..64)),
                1..8,
            )
        ) {
            let sent: Vec<Envelope> = calls
                .into_iter()
                .map(|(id, procedure, body)| Envelope { correlation_id: id, procedure, body, ..Envelope::default() })
                .collect();
            let body = encode(&sent);
            let back: Vec<Envelope> = decode(&body).unwrap().into_iter().map(|item| item.envelope).collect();
            prop_assert_eq!(back, sent);
            // Cut anywhere, it is an error: never a panic, nor a shorter batch.
            for cut in 0..body.len() {
                prop_assert!(decode(&body[..cut]).is_err());
            }
        }
    }
}
