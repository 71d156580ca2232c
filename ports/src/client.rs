use async_trait::async_trait;

use crate::{Envelope, FlowWatch, Stall, TransportError};

/// The client side of a transport: sends requests and opens the address replies come to.
///
/// An adapter MUST:
/// - deliver a request sent with [`send_request`](Self::send_request) to at most one consumer
///   of the named queue at a time, and again to another if that consumer goes away without
///   acknowledging it;
/// - carry every [`Envelope`] field except `deadline` through unchanged, and honour `deadline`
///   as the envelope documents;
/// - fail `send_request` with [`TransportError::NoSuchQueue`] when no queue of that name
///   exists, if the broker can tell, rather than let the message vanish;
/// - return `Ok` from `send_request` only once the broker has taken the message;
/// - connect again by itself, on the same value, after reporting
///   [`TransportError::Disconnected`] anywhere: the protocol keeps the transport it was given
///   and calls [`open_reply_inbox`](Self::open_reply_inbox) and `send_request` on it again.
///   Connecting may fail for a while (`Disconnected` or `Unreachable` again), but not forever
///   once the broker is back.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RequestTransport: Send + Sync {
    /// Opens a fresh reply address for this client.
    ///
    /// The adapter MUST be receiving on the address when this returns, so that a reply sent
    /// right after is not lost; the address MUST be this client's alone. Each call opens a new
    /// address: the protocol calls it again after a disconnection.
    async fn open_reply_inbox(&self) -> Result<Box<dyn ReplyInbox>, TransportError>;

    /// Opens again the reply address `address`, which an inbox of this transport had before
    /// it reported [`TransportError::Disconnected`], with the replies sent to it meanwhile:
    /// the calls that named it go on waiting instead of failing.
    ///
    /// `Ok(None)` means the adapter cannot (its addresses die with their connection, or this
    /// one is gone for good): the protocol then fails the calls that named it and opens a
    /// fresh address. An error means not yet (the broker is still away): the protocol tries
    /// again within its calls' deadlines. The adapter MUST be receiving on the address when
    /// this returns `Ok(Some(_))`.
    async fn resume_reply_inbox(
        &self,
        address: &str,
    ) -> Result<Option<Box<dyn ReplyInbox>>, TransportError> {
        let _ = address;
        Ok(None)
    }

    /// Publishes a request to the request queue `queue`.
    async fn send_request(&self, queue: &str, request: Envelope) -> Result<(), TransportError>;

    /// Why a request to `queue` may be going unanswered, if the adapter can tell: the
    /// protocol asks when a call timed out, to say so in its error. The adapter MUST answer
    /// promptly (it bounds any round trip to the broker) and MUST NOT disturb the queue;
    /// `None` means it sees nothing wrong, or cannot tell.
    async fn stall(&self, queue: &str) -> Option<Stall> {
        let _ = queue;
        None
    }

    /// Follows the broker's flow control on this transport's connection, where the broker
    /// has any; `None` where it has none.
    fn flow(&self) -> Option<FlowWatch> {
        None
    }

    /// The broker, as OpenTelemetry's `messaging.system` names it (`rabbitmq`, `nats`, ...):
    /// what exported spans say they crossed.
    fn messaging_system(&self) -> &'static str;
}

/// The replies that arrive at one reply address, in arrival order.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ReplyInbox: Send {
    /// The address to put in a request's `reply_to`.
    fn address(&self) -> &str;

    /// Whether the address outlives a lost connection, replies kept, so that
    /// [`RequestTransport::resume_reply_inbox`] may open it again: then the protocol sends
    /// again, under the same correlation id, a request whose send failed.
    fn resumable(&self) -> bool {
        false
    }

    /// Waits for the next reply.
    ///
    /// An error MUST end the inbox: after it nothing more arrives here, and the adapter MUST
    /// report a lost connection (or a reply queue deleted under it) as
    /// [`TransportError::Disconnected`] promptly, not leave this waiting forever.
    async fn next_reply(&mut self) -> Result<Envelope, TransportError>;
}
