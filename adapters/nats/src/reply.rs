//! Replies: core NATS messages to the caller's inbox subject, whichever mode took the request.

use fibrpc_ports::{Envelope, TransportError};

use crate::errors;
use crate::headers::to_headers;

/// Publishes `reply` over core NATS; with `flush`, waits until the server has it (the protocol
/// acknowledges a JetStream request next). A core request is acknowledged with nothing:
/// async-nats writes the reply out with what follows.
pub(crate) async fn send_reply(
    client: &async_nats::Client,
    reply_to: &str,
    reply: Envelope,
    flush: bool,
) -> Result<(), TransportError> {
    let headers = to_headers(&reply)?;
    client
        .publish_with_headers(reply_to.to_owned(), headers, reply.body.into())
        .await
        .map_err(|error| errors::core_publish(reply_to, &error))?;
    if !flush {
        return Ok(());
    }
    client.flush().await.map_err(|error| errors::flush(&error))
}
