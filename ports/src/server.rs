use async_trait::async_trait;

use crate::{Envelope, TransportError};

/// The server side of a transport: takes requests from a queue and sends replies.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ReplyTransport: Send + Sync {
    /// Starts consuming the request queue `queue`, creating it if the broker needs that.
    ///
    /// The adapter MUST hand out at most `prefetch` requests that are not yet settled
    /// (acknowledged or rejected) at once, and MUST let several consumers of one queue, in this
    /// process or others, share its requests.
    async fn consume_requests(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn RequestStream>, TransportError>;

    /// Sends a reply to a client's reply address (a request's `reply_to`).
    ///
    /// The adapter MUST fail with [`TransportError::NoSuchQueue`] when the address no longer
    /// exists, if the broker can tell, and MUST return `Ok` only once the broker has taken
    /// the reply: the protocol acknowledges the request after this returns.
    async fn send_reply(&self, reply_to: &str, reply: Envelope) -> Result<(), TransportError>;
}

/// The requests of one consumer, in delivery order.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RequestStream: Send {
    /// Waits for the next request.
    ///
    /// An error MUST end the stream; a lost connection or a consumer cancelled by the broker
    /// MUST be reported as [`TransportError::Disconnected`] promptly.
    async fn next_request(&mut self) -> Result<IncomingRequest, TransportError>;

    /// Stops consuming: after this no request is handed out, and requests the adapter holds
    /// but has not handed out MUST go back to the queue. Requests already handed out can still
    /// be settled. Dropping the stream without calling this MUST have the same effect, as far
    /// as the adapter can do it without waiting.
    async fn cancel(&mut self) -> Result<(), TransportError>;
}

/// How an adapter settles one delivered request with its broker.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Settle: Send {
    async fn ack(self: Box<Self>) -> Result<(), TransportError>;
    async fn reject(self: Box<Self>, requeue: bool) -> Result<(), TransportError>;

    /// Whether this adapter can send a reply along the request's own path; see
    /// [`reply_before_settling`](Self::reply_before_settling).
    fn can_reply_before_settling(&self) -> bool {
        false
    }

    /// Sends `reply` to `reply_to` along the path this request came by, so that the broker
    /// holds the reply before it sees this request's settlement, without waiting for the
    /// broker to confirm the reply. Called only when
    /// [`can_reply_before_settling`](Self::can_reply_before_settling) says so; otherwise the
    /// protocol sends the reply with [`ReplyTransport::send_reply`] and settles only once
    /// that returned.
    ///
    /// An adapter that implements it MUST guarantee that the broker takes the reply before
    /// the settlement that follows (one AMQP channel's methods are handled in order, say), so
    /// that a request is never acknowledged with its reply lost. It MAY drop a reply whose
    /// address no longer exists without telling (the caller is gone).
    async fn reply_before_settling(
        &mut self,
        reply_to: &str,
        reply: Envelope,
    ) -> Result<(), TransportError> {
        let _ = (reply_to, reply);
        Err(TransportError::Refused {
            reason: "this adapter has no reply path of its own".to_owned(),
        })
    }
}

/// A request handed to the server, to be settled exactly once.
///
/// A request dropped without being settled MUST be delivered again, to this consumer or
/// another (the broker's at-least-once guarantee): the protocol relies on it when a server
/// dies mid-flight.
pub struct IncomingRequest {
    pub envelope: Envelope,
    /// True when the broker says an earlier delivery of this request was not acknowledged.
    pub redelivered: bool,
    settle: Box<dyn Settle>,
}

impl IncomingRequest {
    pub fn new(envelope: Envelope, redelivered: bool, settle: Box<dyn Settle>) -> Self {
        Self {
            envelope,
            redelivered,
            settle,
        }
    }

    /// Sends the reply to this request: along the request's own path where the adapter has
    /// one (see [`Settle::reply_before_settling`]), else through `replies`. Either way, once
    /// this returns `Ok` the request may be acknowledged without its reply being lost.
    pub async fn send_reply(
        &mut self,
        replies: &dyn ReplyTransport,
        reply_to: &str,
        reply: Envelope,
    ) -> Result<(), TransportError> {
        if self.settle.can_reply_before_settling() {
            self.settle.reply_before_settling(reply_to, reply).await
        } else {
            replies.send_reply(reply_to, reply).await
        }
    }

    /// Tells the broker the request is done with; it will not be delivered again.
    pub async fn ack(self) -> Result<(), TransportError> {
        self.settle.ack().await
    }

    /// Gives the request back: to the queue when `requeue`, otherwise it is discarded (or
    /// dead-lettered, where the broker is set up for it).
    pub async fn reject(self, requeue: bool) -> Result<(), TransportError> {
        self.settle.reject(requeue).await
    }
}

impl std::fmt::Debug for IncomingRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IncomingRequest")
            .field("envelope", &self.envelope)
            .field("redelivered", &self.redelivered)
            .finish_non_exhaustive()
    }
}
