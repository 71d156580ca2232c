//! fibrpc's RabbitMQ transport, on lapin: implements both transport ports over AMQP 0-9-1,
//! wire-compatible with the RabbitMQ RPC tutorial.
//!
//! - Client side: requests are published to the default exchange with the request queue as
//!   routing key, `mandatory` and publisher confirms (a request to a queue that does not exist
//!   fails at once with `NoSuchQueue`), `reply_to`, `correlation_id`, `content_type`, and
//!   `expiration` set from the call's deadline. Replies come to one exclusive, auto-delete,
//!   server-named queue per connection (the tutorial's callback queue), or to RabbitMQ's
//!   direct reply-to.
//! - Server side: an existing request queue is consumed as it is, whatever its kind and
//!   arguments (the broker refuses our declare of it, then a passive declare finds it); a
//!   missing one is declared as
//!   [`RequestQueueSpec`] says (the tutorial's classic queue by default, or quorum, durable,
//!   with a dead-letter exchange and a delivery limit). Requests are consumed with manual
//!   acknowledgement under `basic.qos` prefetch; replies are published with confirms.
//! - The client side declares only its own reply queue; it never declares a request queue.
//!
//! The adapter translates and nothing more: correlation, deadlines, retries and codecs live in
//! the protocol above the ports. It does not use lapin's automatic recovery: the protocol must
//! learn of every connection loss to fail the calls in flight, and a server-named reply queue
//! cannot be re-declared. Instead, the first operation after a loss opens a new connection:
//! with several broker addresses (a cluster), to the next one that answers.
//! Depends on the ports, lapin, tokio, futures-util (consumer streams) and tracing only.

mod acks;
mod addresses;
mod client;
mod config;
mod connection;
mod errors;
mod properties;
mod queue;
mod redact;
mod reply_queue;
mod server;

use std::sync::Arc;

use async_trait::async_trait;
use fibrpc_ports::{QueueAdmin, TransportError};

pub use addresses::{parse_addresses, AddressError};
pub use config::{
    AmqpConfig, QueueKind, QueueSpecError, ReplyQueueMode, RequestGuarantees, RequestQueueSpec,
};
pub use redact::redact_url;

use connection::Link;

/// A connection to RabbitMQ, usable as client and server transport at once. Cheap to clone;
/// clones share the connection.
#[derive(Clone)]
pub struct AmqpTransport {
    link: Arc<Link>,
}

impl AmqpTransport {
    /// Connects to the first of the configured addresses that answers.
    ///
    /// # Errors
    /// `TransportError::Unreachable` (passwords redacted) when the address list is malformed
    /// or inconsistent, or when no address answers, each within the connect timeout; the
    /// error then names every address tried and why it failed.
    pub async fn connect(config: AmqpConfig) -> Result<Self, TransportError> {
        let link = Link::new(config.clone()).map_err(|error| TransportError::Unreachable {
            address: redact_url(&config.url),
            reason: error.to_string(),
        })?;
        link.live().await?;
        Ok(Self {
            link: Arc::new(link),
        })
    }

    /// The broker address this transport is connected to now (password hidden), or None
    /// while it has no live connection (lost, not yet replaced).
    pub fn connected_address(&self) -> Option<String> {
        self.link.connected_address()
    }

    /// The configuration this transport connects with.
    pub fn config(&self) -> &AmqpConfig {
        self.link.config()
    }

    /// A channel for one administrative operation: a failed one (a passive declare of a
    /// missing queue, a declare with other arguments) closes its channel, which must not be
    /// the channel the requests and replies go out on.
    async fn admin_channel(&self) -> Result<lapin::Channel, TransportError> {
        self.link.live().await?.open_channel().await
    }
}

#[async_trait]
impl QueueAdmin for AmqpTransport {
    /// Makes sure the request queue `queue` exists, as a server does when it starts: an
    /// existing queue is left as it is, a missing one is declared as the configuration's
    /// [`RequestQueueSpec`] says.
    ///
    /// # Errors
    /// `Refused` if the spec is invalid (see [`RequestQueueSpec::validate`]; checked only when
    /// the queue is missing) or the broker refuses the look or the declare (a queue exclusive
    /// to another connection, a reserved `amq.` name, no permission); `Disconnected` or
    /// `Unreachable` if the connection is lost or cannot be opened.
    async fn declare_request_queue(&self, queue: &str) -> Result<(), TransportError> {
        let live = self.link.live().await?;
        queue::ensure_request_queue(&live, queue, &self.config().request_queue)
            .await
            .map(|_| ())
    }

    /// Deletes the queue `queue` and what is in it.
    async fn delete_queue(&self, queue: &str) -> Result<(), TransportError> {
        let channel = self.admin_channel().await?;
        let outcome = channel
            .queue_delete(queue.into(), lapin::options::QueueDeleteOptions::default())
            .await
            .map(|_| ())
            .map_err(|error| errors::translate(&error, queue));
        let _ = channel.close(200, "done".into()).await;
        outcome
    }

    /// Messages ready in `queue` (not yet handed to a consumer).
    async fn queue_depth(&self, queue: &str) -> Result<u64, TransportError> {
        let channel = self.admin_channel().await?;
        let options = lapin::options::QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let outcome = channel
            .queue_declare(queue.into(), options, Default::default())
            .await
            .map(|declared| u64::from(declared.message_count()))
            .map_err(|error| errors::translate(&error, queue));
        let _ = channel.close(200, "done".into()).await;
        outcome
    }
}
