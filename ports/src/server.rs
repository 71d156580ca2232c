use async_trait::async_trait;

use crate::{Envelope, FlowWatch, TransportError};

/// The server side of a transport: takes requests from a queue. Replies go back through each
/// request's own handle ([`IncomingRequest::reply`]).
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ReplyTransport: Send + Sync {
    /// Starts consuming the request queue `queue`, creating it if the broker needs that.
    ///
    /// The adapter MUST hand out at most `prefetch` requests that are not yet settled
    /// (acknowledged or rejected) at once; a `prefetch` of 0 MUST mean no limit (as AMQP's
    /// `basic.qos` 0 does). It MUST let several consumers of one queue, in this process or
    /// others, share its requests.
    ///
    /// After a [`TransportError::Disconnected`] from any stream or inbox of this transport,
    /// the same transport value MUST connect again by itself: the protocol calls this method
    /// again (with backoff) on the value it has, and never builds a new one.
    async fn consume_requests(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn RequestStream>, TransportError>;

    /// Tells the adapter the names of the procedures a server hosts on `queue`, before it
    /// consumes the queue, so that an adapter can offer more than the queue itself (NATS: a
    /// subject per procedure, and the NATS services API describing the server). An adapter
    /// MAY ignore it; requests naming any procedure MUST still arrive through the queue.
    fn announce_procedures(&self, queue: &str, procedures: &[&'static str]) {
        let _ = (queue, procedures);
    }

    /// Follows the broker's flow control on this transport's connection, where the broker
    /// has any (see [`RequestTransport::flow`](crate::RequestTransport::flow)): while it
    /// blocks publishing, replies wait, so a server is not ready.
    fn flow(&self) -> Option<FlowWatch> {
        None
    }

    /// The broker, as OpenTelemetry's `messaging.system` names it (`rabbitmq`, `nats`, ...):
    /// what exported spans say they crossed.
    fn messaging_system(&self) -> &'static str;
}

/// The requests of one consumer, in delivery order.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait RequestStream: Send {
    /// Waits for the next request.
    ///
    /// The future MUST be cancel-safe: the protocol drops it whenever something else is
    /// ready first (a request in flight finished, shutdown), many times a second under load,
    /// and the kit drops it after a quiet wait. Dropped before it completes, it MUST NOT have
    /// taken a request from the broker that it then loses: either no request was taken, or the
    /// one taken is kept in the stream for the next call. An adapter that reads from the
    /// broker with an await inside this method (a Redis `XREADGROUP`, a pull that returns a
    /// batch) keeps what it read in a field of the stream before anything else can be awaited.
    ///
    /// An error MUST end the stream; a lost connection or a consumer cancelled by the broker
    /// MUST be reported as [`TransportError::Disconnected`] promptly.
    ///
    /// A message in the queue that the adapter cannot read as an [`Envelope`] (a field it
    /// cannot decode, a broker's message of another kind) MUST NOT end the stream, nor be
    /// returned as an error: every consumer in turn would take the same message and end. The
    /// adapter MUST settle it so that it is not delivered again (reject without requeue, which
    /// dead-letters it where the broker is set up for that), log one line saying why (at
    /// `warn`), and go on to the next request.
    async fn next_request(&mut self) -> Result<IncomingRequest, TransportError>;

    /// Stops consuming: after this no request is handed out, and requests the adapter holds
    /// but has not handed out MUST go back to the queue. Requests already handed out can still
    /// be settled. Dropping the stream without calling this MUST have the same effect, as far
    /// as the adapter can do it without waiting.
    async fn cancel(&mut self) -> Result<(), TransportError>;
}

/// How an adapter answers and settles one delivered request with its broker.
///
/// Dropped unsettled (a server died mid-request, a handler panicked, a stream was abandoned),
/// the request MUST be delivered again: `Drop` of the adapter's type gives it back (a NAK, a
/// requeue). `Drop` cannot await and MUST NOT block: it hands the give-back to
/// [`spawn_from_drop`](crate::spawn_from_drop), which runs it on the current tokio runtime.
/// When there is none (the runtime is shutting down, or the process is dying), the request
/// MUST still be redelivered by the broker alone: when the connection closes, or after a
/// timeout the adapter declares (see the conformance kit's `redelivery_timeout`). A process
/// killed outright runs no `Drop` at all, so the broker-side path is the one that counts.
///
/// A request handed out stays settleable after its stream has ended or been cancelled: the
/// adapter MUST send its `ack` or `reject` if the connection that delivered it still lives,
/// and otherwise return [`TransportError::Disconnected`] (the broker then delivers it again;
/// it MUST NOT be settled over another connection, which the broker would refuse or misread).
///
/// While it is held and its consumer lives, a request MUST NOT be delivered to another
/// consumer, however long it is held: where a broker redelivers after an acknowledgement
/// timeout (JetStream's ack wait, a Redis Streams claim by idle time), the adapter keeps it
/// from doing so for as long as the handle lives (a progress acknowledgement, a re-claim).
/// An adapter whose broker leaves no way to do that says so in its documentation (and its
/// test factory declares the guarantee lacking): at-least-once allows the second delivery,
/// but the request is then computed twice.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Settle: Send {
    /// The request is done with. The adapter MUST have sent the acknowledgement when it
    /// returns `Ok` (and, where the broker confirms acknowledgements, have the confirmation):
    /// after `Ok` the request comes back only if the connection was lost before the broker
    /// took the acknowledgement.
    async fn ack(self: Box<Self>) -> Result<(), TransportError>;

    /// Gives the request back: with `requeue`, the broker MUST deliver it again (to any
    /// consumer, `redelivered` set); without, it MUST NOT (dead-lettered where the broker is
    /// set up for it, else discarded).
    async fn reject(self: Box<Self>, requeue: bool) -> Result<(), TransportError>;

    /// Sends `reply` to `reply_to` (the request's `reply_to`): the one way a server answers,
    /// and the adapter chooses the path (the channel that delivered the request, a connection
    /// of its own).
    ///
    /// Once this returns `Ok` the protocol settles the request, so the adapter MUST guarantee
    /// that the broker has taken the reply, or will take it before it sees the settlement that
    /// follows (one AMQP channel's methods are handled in order, say): a request is never
    /// acknowledged with its reply lost. It MUST fail with [`TransportError::NoSuchQueue`]
    /// when the address no longer exists, if the broker can tell without a round trip of its
    /// own; where it cannot, it MAY drop such a reply without telling (the caller is gone),
    /// and its test factory declares the guarantee lacking. It MUST carry every field of the
    /// [`Envelope`] a reply has (correlation id, content type, body, error mark).
    async fn reply(&mut self, reply_to: &str, reply: Envelope) -> Result<(), TransportError>;
}

/// A request handed to the server, to be settled exactly once.
///
/// A request dropped without being settled MUST be delivered again, to this consumer or
/// another (the broker's at-least-once guarantee): the protocol relies on it when a server
/// dies mid-flight. See [`Settle`] for how, without a `Drop` that awaits, and when the whole
/// process dies.
pub struct IncomingRequest {
    pub envelope: Envelope,
    /// True when the broker says an earlier delivery of this request was not acknowledged.
    /// A hint, for logs: the protocol behaves the same either way. An adapter SHOULD set it
    /// when the broker does and MAY set it for a request its consumer took from the broker
    /// and gave back before handing it out (after `cancel`, say), as RabbitMQ does.
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

    /// Sends the reply to this request, by the path its adapter chooses ([`Settle::reply`]);
    /// once this returns `Ok` the request may be acknowledged without its reply being lost.
    pub async fn reply(&mut self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        self.settle.reply(reply_to, reply).await
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
