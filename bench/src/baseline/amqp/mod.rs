//! A bare request/reply over RabbitMQ with lapin alone: the competitor fibrpc's AMQP transport
//! is measured against (`fibrpc bench --baseline`, `fibrpc bare-echo`).
//!
//! Written as a user who knows lapin would write it by hand, as fast as we could make it, and
//! with none of fibrpc's guarantees: no publisher confirms, no `mandatory`, no deadline on the
//! wire, no reconnection. [`BareEcho`] answers each request with its own body; [`BareClient`]
//! sends requests and routes the replies back to their callers. docs/performance.md lists the
//! variants tried and what each measured.

mod client;
mod echo;

use std::time::Duration;

use fibrpc_ports::redact::{scrub_urls, LoneUser};
use fibrpc_ports::TransportError;
use lapin::{Connection, ConnectionProperties};

pub use client::BareClient;
pub use echo::BareEcho;

/// How long opening the connection may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(5);

/// A connection of its own, named so that operators see what it is. `urls` may list a
/// cluster's nodes, as fibrpc's `--amqp-url` does: the first that answers is used.
async fn connect(urls: &str, name: &str) -> Result<Connection, TransportError> {
    let nodes = nodes(urls).map_err(|error| TransportError::Refused {
        reason: error.to_string(),
    })?;
    let mut failure = None;
    for url in &nodes {
        let properties = ConnectionProperties::default().with_connection_name(name.into());
        let reason =
            match tokio::time::timeout(CONNECT_LIMIT, Connection::connect(url, properties)).await {
                Ok(Ok(connection)) => return Ok(connection),
                Ok(Err(error)) => scrub_urls(&error.to_string(), url, LoneUser::Name),
                Err(_) => format!("no answer within {CONNECT_LIMIT:?}"),
            };
        failure = Some(TransportError::Unreachable {
            address: fibrpc_amqp::redact_url(url),
            reason,
        });
    }
    Err(failure.unwrap_or_else(|| TransportError::Refused {
        reason: "no broker address".to_owned(),
    }))
}

/// The full URL of each node `urls` lists (later entries may be host:port alone).
pub(crate) fn nodes(urls: &str) -> Result<Vec<String>, fibrpc_amqp::AddressError> {
    fibrpc_amqp::parse_addresses(urls)
}

/// A lapin error as the bench reports it: a missing queue apart, the rest in lapin's words.
fn translate(error: &lapin::Error, queue: &str) -> TransportError {
    use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
    match error.kind() {
        lapin::ErrorKind::ProtocolError(amqp)
            if matches!(amqp.kind(), AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)) =>
        {
            TransportError::NoSuchQueue {
                queue: queue.to_owned(),
            }
        }
        _ => TransportError::disconnected(error.to_string()),
    }
}
