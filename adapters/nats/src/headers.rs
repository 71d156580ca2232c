//! Envelope fields <-> NATS headers.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::HeaderMap;
use fibrpc_ports::Envelope;

const CORRELATION_ID: &str = "Fibrpc-Correlation-Id";
const REPLY_TO: &str = "Fibrpc-Reply-To";
const CONTENT_TYPE: &str = "Content-Type";
/// The deadline as milliseconds since the Unix epoch: JetStream keeps messages without
/// expiring them one by one (before NATS 2.11), so the receiver must know how long the
/// message waited; the wall clock is what both ends share.
const DEADLINE: &str = "Fibrpc-Deadline-Unix-Ms";

pub(crate) fn to_headers(envelope: &Envelope) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Some(id) = &envelope.correlation_id {
        headers.insert(CORRELATION_ID, id.as_str());
    }
    if let Some(reply_to) = &envelope.reply_to {
        headers.insert(REPLY_TO, reply_to.as_str());
    }
    if let Some(content_type) = &envelope.content_type {
        headers.insert(CONTENT_TYPE, content_type.as_str());
    }
    if let Some(deadline) = envelope.deadline {
        let left = deadline.saturating_duration_since(Instant::now());
        let at = (SystemTime::now() + left)
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        headers.insert(DEADLINE, at.to_string().as_str());
    }
    headers
}

pub(crate) fn to_envelope(headers: Option<&HeaderMap>, body: Vec<u8>) -> Envelope {
    let field = |name: &str| {
        headers
            .and_then(|headers| headers.get(name))
            .map(|value| value.as_str().to_owned())
    };
    let deadline = field(DEADLINE)
        .and_then(|millis| millis.parse::<u64>().ok())
        .map(|millis| {
            let at = UNIX_EPOCH + Duration::from_millis(millis);
            match at.duration_since(SystemTime::now()) {
                Ok(left) => Instant::now() + left,
                // Already past: a deadline in the past, however far.
                Err(_) => Instant::now() - Duration::from_millis(1),
            }
        });
    Envelope {
        correlation_id: field(CORRELATION_ID),
        reply_to: field(REPLY_TO),
        content_type: field(CONTENT_TYPE),
        deadline,
        body,
    }
}
