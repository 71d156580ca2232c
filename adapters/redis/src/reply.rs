//! Replies: pushed to the caller's inbox list, through a request's handle or the transport.

use fibrpc_ports::{Envelope, TransportError};

use crate::{fields, names, scripts, Inner};

/// Pushes `reply` onto the inbox list `reply_to` if its marker says the inbox is open.
pub(crate) async fn send_reply(
    inner: &Inner,
    reply_to: &str,
    reply: Envelope,
) -> Result<(), TransportError> {
    let packed = fields::pack(&fields::to_pairs(&reply));
    let mut connection = inner.connections.shared().await?;
    let outcome = scripts::REPLY
        .key(reply_to)
        .key(names::marker(reply_to))
        .arg(packed)
        .arg(names::inbox_ttl_ms())
        .invoke_async::<u8>(&mut connection)
        .await;
    match inner.connections.check(outcome, "sending a reply")? {
        1 => Ok(()),
        _ => Err(TransportError::NoSuchQueue {
            queue: reply_to.to_owned(),
        }),
    }
}
