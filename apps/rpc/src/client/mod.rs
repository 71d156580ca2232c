//! The RPC client: calls procedures on whichever server consumes the request queue.

mod batching;
mod dispatch;
mod pending;
mod stall;

#[cfg(test)]
mod resume_tests;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc_ports::{Envelope, RequestTransport, TransportError};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

pub use self::batching::BatchLimits;
use self::batching::Batcher;
use self::dispatch::ReplyAddress;
use self::pending::PendingCalls;
use self::stall::StallProbe;
use crate::codec::{self, truncate_for_display, Codec};
use crate::metrics::{CallOutcome, Metrics};
use crate::procedure::request_codec;
use crate::trace::CallTrace;
use crate::{Backoff, CallError, Endpoint, TimedOut, Unanswered, Wire};

/// Whether a failed call is sent again.
///
/// A call whose reply address was lost and could not be resumed is sent again (as a new call)
/// only if its procedure says it is idempotent ([`Endpoint::IDEMPOTENT`]): its request may
/// have run. A call whose request the broker did not take, or never confirmed taking, on a
/// reply address that outlives a lost connection ([`fibrpc_ports::ReplyInbox::resumable`],
/// RabbitMQ's default reply queue), is sent again under the same correlation id whatever its
/// procedure: a server that got it twice answers the second from memory (see
/// docs/reliability.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RetryPolicy {
    #[default]
    Never,
    /// Sends again after a lost connection, a transport timeout or a missing request queue
    /// (gone with a broker restart until a server declares it again), within the call's
    /// original deadline, waiting per the backoff between attempts. Without it those fail the
    /// call at once.
    Idempotent { backoff: Backoff },
}

#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The request queue servers consume.
    pub queue: String,
    /// How long a call waits for its reply, sending included.
    pub timeout: Duration,
    /// The codec of requests (bincode unless told otherwise; JSON, or a procedure's own),
    /// for procedures that speak it; the others use their first.
    pub codec: Codec,
    /// Calls in flight at most; further callers wait for a slot (within their deadline).
    pub max_in_flight: usize,
    pub retry: RetryPolicy,
    /// How the client waits between attempts to reopen a lost reply address.
    pub reconnect: Backoff,
    /// Where the client counts its calls, if anywhere ([`crate::metrics`]).
    pub metrics: Option<Metrics>,
    /// Sends calls waiting to be sent together, several per message, within these bounds
    /// (docs/wire.md, "Several calls in one message"). Off by default: only fibrpc servers
    /// read such messages, so turn it on only where no other server consumes the queue.
    pub batch: Option<BatchLimits>,
    /// Says in every request that this client reads coalesced replies, so that a server may
    /// answer several calls in one message. On by default.
    pub coalesced_replies: bool,
    /// Each call made in a span, its trace context sent as the request's `traceparent` (on by
    /// default). Off, neither: the server starts a trace of its own for each request, and an
    /// exporter sees nothing of the call.
    pub trace: bool,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            queue: "rpc_queue".to_owned(),
            timeout: Duration::from_secs(5),
            codec: Codec::default(),
            max_in_flight: 4096,
            retry: RetryPolicy::Never,
            reconnect: Backoff::default(),
            metrics: None,
            batch: None,
            coalesced_replies: true,
            trace: true,
        }
    }
}

/// Counters a client keeps, for tests and monitoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientStats {
    /// Calls waiting for their reply right now.
    pub pending: usize,
    /// Replies that arrived for no waiting call (late, unknown or without correlation id).
    pub unmatched_replies: u64,
    /// Times the reply address was lost and opened again.
    pub reconnects: u64,
    /// Attempts that failed and were sent again under the retry policy.
    pub retries: u64,
    /// Times the reply address was lost and opened again with the replies sent meanwhile
    /// (not counted in `reconnects`): calls in flight went on waiting.
    pub resumed: u64,
}

/// A client of the procedures served on one request queue. Cheap to clone; clones share one
/// reply address and the calls in flight on it. The reply address closes when the last clone
/// is dropped.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Arc<dyn RequestTransport>,
    config: ClientConfig,
    pending: Arc<PendingCalls>,
    reply_address: watch::Receiver<Option<ReplyAddress>>,
    in_flight: Semaphore,
    retries: AtomicU64,
    /// Times the reply address was lost and resumed with its replies.
    resumed: Arc<AtomicU64>,
    stalls: StallProbe,
    /// The sender of coalesced requests, when the client sends them.
    batcher: Option<Batcher>,
    dispatcher: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.dispatcher.abort();
    }
}

impl RpcClient {
    /// Opens the client's reply address; replies are being received when this returns.
    pub async fn connect(
        transport: Arc<dyn RequestTransport>,
        config: ClientConfig,
    ) -> Result<Self, TransportError> {
        let inbox = transport.open_reply_inbox().await?;
        let first = ReplyAddress::of(inbox.as_ref(), 0);
        let (address_sender, reply_address) = watch::channel(Some(first));
        let pending = Arc::new(PendingCalls::default());
        let resumed = Arc::new(AtomicU64::new(0));
        let dispatcher = tokio::spawn(dispatch::run(
            transport.clone(),
            inbox,
            pending.clone(),
            address_sender,
            config.reconnect,
            config.metrics.clone(),
            resumed.clone(),
        ));
        let batcher = config
            .batch
            .map(|limits| Batcher::start(transport.clone(), config.queue.clone(), limits));
        Ok(Self {
            inner: Arc::new(Inner {
                batcher,
                in_flight: Semaphore::new(config.max_in_flight.max(1)),
                retries: AtomicU64::new(0),
                resumed,
                stalls: StallProbe::default(),
                transport,
                config,
                pending,
                reply_address,
                dispatcher,
            }),
        })
    }

    /// Calls procedure `P` with `request`, within the client's timeout.
    ///
    /// # Errors
    /// [`CallError::Remote`] with the procedure's own error, [`CallError::Fault`] when the
    /// server refused the request (unknown procedure, unreadable, too large) or failed,
    /// [`CallError::Timeout`] when no reply came in time, [`CallError::Transport`] when the
    /// connection was lost or the queue does not exist (after retries, if the policy and the
    /// procedure allow them), [`CallError::BadRequest`] and [`CallError::BadReply`] for what
    /// could not be encoded or read.
    pub async fn call<P: Endpoint>(
        &self,
        request: P::Request,
    ) -> Result<P::Response, CallError<P::Error>> {
        self.call_with_timeout::<P>(request, self.inner.config.timeout)
            .await
    }

    /// [`call`](Self::call) with a timeout of its own.
    ///
    /// The call carries the current [`TraceContext`](crate::TraceContext) (a new trace outside any) to the server,
    /// and runs in a span with its `trace_id`, as the server's handling does.
    ///
    /// # Errors
    /// As [`call`](Self::call).
    pub async fn call_with_timeout<P: Endpoint>(
        &self,
        request: P::Request,
        timeout: Duration,
    ) -> Result<P::Response, CallError<P::Error>> {
        let inner = &*self.inner;
        let trace = self.trace(P::NAME);
        let metrics = inner.config.metrics.as_ref();
        let started = metrics.map(|_| std::time::Instant::now());
        let outcome = self
            .call_in_trace::<P>(request, timeout, &trace)
            .instrument(trace.span.clone())
            .await;
        if let (Some(metrics), Some(started)) = (metrics, started) {
            let outcome = CallOutcome::of(&outcome);
            metrics
                .client_procedure(P::NAME)
                .record_call(outcome, started.elapsed());
        }
        trace.finish(CallOutcome::of(&outcome));
        trace.span.in_scope(|| match &outcome {
            Ok(_) => tracing::debug!("call answered"),
            Err(error) => tracing::debug!(%error, "call failed"),
        });
        outcome
    }

    async fn call_in_trace<P: Endpoint>(
        &self,
        request: P::Request,
        timeout: Duration,
        trace: &CallTrace,
    ) -> Result<P::Response, CallError<P::Error>> {
        let deadline = Instant::now() + timeout;
        let attempts = async {
            let mut attempt = 0;
            loop {
                match self.attempt::<P>(&request, deadline, trace).await {
                    Err(error) if error.is_retryable() && P::IDEMPOTENT => {
                        let RetryPolicy::Idempotent { backoff } = self.inner.config.retry else {
                            return Err(error);
                        };
                        tracing::debug!(%error, attempt, "call failed; sending it again");
                        self.count_retry();
                        tokio::time::sleep(backoff.delay(attempt)).await;
                        attempt += 1;
                    }
                    outcome => return outcome,
                }
            }
        };
        self.by_deadline(deadline, timeout, attempts).await
    }

    /// `call`'s outcome, or a timeout (with what was seen) at `deadline`.
    async fn by_deadline<T, E>(
        &self,
        deadline: Instant,
        timeout: Duration,
        call: impl std::future::Future<Output = Result<T, CallError<E>>>,
    ) -> Result<T, CallError<E>> {
        match tokio::time::timeout_at(deadline, call).await {
            Ok(outcome) => outcome,
            Err(_) => Err(CallError::Timeout(TimedOut {
                after: timeout,
                seen: self.what_was_seen().await,
            })),
        }
    }

    /// Why a call may have timed out, as far as the client can tell: its reply address
    /// gone, or what the transport sees of the request queue and the connection.
    async fn what_was_seen(&self) -> Option<Unanswered> {
        let inner = &*self.inner;
        if inner.reply_address.borrow().is_none() {
            return Some(Unanswered::ReplyAddressLost);
        }
        let stall = inner
            .stalls
            .probe(inner.transport.as_ref(), &inner.config.queue)
            .await;
        stall.map(Unanswered::Stalled)
    }

    async fn attempt<P: Endpoint>(
        &self,
        request: &P::Request,
        deadline: Instant,
        trace: &CallTrace,
    ) -> Result<P::Response, CallError<P::Error>> {
        let codec = request_codec::<P>(self.inner.config.codec);
        let body = P::Wire::encode_request(codec, request)
            .map_err(|error| CallError::BadRequest { reason: error.0 })?;
        let reply = self
            .round_trip(P::NAME, codec.content_type(), body, deadline, trace)
            .await?;
        // A server that does not read our codec answers in its own (the tutorial's servers
        // parse a bincode body as text and answer "0"): such a reply is not an answer.
        let reply_content_type = reply
            .content_type
            .as_deref()
            .unwrap_or(<P::Wire as Wire<P>>::UNTYPED.content_type());
        if !codec.reads(reply_content_type) {
            // A server that does not speak the request's codec at all answers its fault in
            // one of its own, marked as an error reply.
            if let Some(fault) = reply
                .error
                .as_ref()
                .and_then(|mark| codec::read_fault(reply_content_type, &reply.body, mark))
            {
                return Err(CallError::Fault(fault));
            }
            return Err(CallError::BadReply {
                reason: format!(
                    "a {} reply to a {codec} request: the server does not speak this codec",
                    truncate_for_display(reply_content_type),
                ),
            });
        }
        P::Wire::decode_reply(codec, &reply.body, reply.error.as_ref())
    }

    /// Sends one request and waits for its reply, through the calls' table of pending
    /// replies: what typed and raw calls share.
    async fn round_trip<E>(
        &self,
        procedure: &str,
        content_type: &str,
        body: Vec<u8>,
        deadline: Instant,
        trace: &CallTrace,
    ) -> Result<Envelope, CallError<E>> {
        let inner = &*self.inner;
        let _slot = inner
            .in_flight
            .acquire()
            .await
            .map_err(|_| TransportError::disconnected("client closed"))?;
        let reply_to = inner
            .reply_address
            .clone()
            .wait_for(Option::is_some)
            .await
            .map_err(|_| TransportError::disconnected("client closed"))?
            .clone()
            .ok_or_else(|| TransportError::disconnected("no reply address"))?;
        let correlation_id = uuid::Uuid::new_v4().to_string();
        trace.conversation(&correlation_id);
        let (_entry, mut reply) = inner
            .pending
            .register(correlation_id.clone(), reply_to.generation)?;
        let request = Envelope {
            correlation_id: Some(correlation_id),
            reply_to: Some(reply_to.address.to_string()),
            content_type: Some(content_type.to_owned()),
            procedure: Some(procedure.to_owned()),
            deadline: Some(deadline.into_std()),
            body,
            traceparent: trace.traceparent(),
            error: None,
            reads_batches: inner.config.coalesced_replies,
        };
        // The reply can come before the broker's word that it took the request (a publisher
        // confirm, say): a reply proves it did, so the call does not wait for that word. A
        // refusal (no such queue, a negative confirm) that comes first fails the call at once.
        let Some(backoff) = self.resends(&reply_to) else {
            let sending = self.send(request);
            let replied = tokio::select! {
                biased;
                sent = sending => {
                    sent?;
                    reply.await
                }
                replied = &mut reply => replied,
            };
            return Ok(replied.map_err(|_| TransportError::disconnected("reply loop ended"))??);
        };
        // The reply address outlives a lost connection: a request the broker did not take (or
        // whose taking it never confirmed) goes again under the same correlation id, which
        // lets a server answer a repeat from memory ([`crate::server`]); one it took waits for
        // its reply.
        let mut attempt = 0;
        let replied = loop {
            let sending = self.send(request.clone());
            tokio::select! {
                biased;
                sent = sending => match sent {
                    Ok(()) => break reply.await,
                    Err(error) if not_taken(&error) => {
                        tracing::debug!(%error, attempt, "request not taken; sending it again");
                        self.count_retry();
                        tokio::select! {
                            biased;
                            replied = &mut reply => break replied,
                            () = tokio::time::sleep(backoff.delay(attempt)) => {}
                        }
                        attempt += 1;
                    }
                    Err(error) => return Err(error.into()),
                },
                replied = &mut reply => break replied,
            }
        };
        Ok(replied.map_err(|_| TransportError::disconnected("reply loop ended"))??)
    }

    /// Sends one request: through the batcher when the client coalesces requests, else
    /// alone.
    async fn send(&self, request: Envelope) -> Result<(), TransportError> {
        let inner = &*self.inner;
        match &inner.batcher {
            Some(batcher) => batcher.send(request).await,
            None => {
                inner
                    .transport
                    .send_request(&inner.config.queue, request)
                    .await
            }
        }
    }

    /// The backoff between resends of one request, when requests to `reply_to` are resent:
    /// with a retry policy, and an address that survives a lost connection.
    fn resends(&self, reply_to: &ReplyAddress) -> Option<Backoff> {
        match self.inner.config.retry {
            RetryPolicy::Idempotent { backoff } if reply_to.resumable => Some(backoff),
            _ => None,
        }
    }

    fn count_retry(&self) {
        self.inner.retries.fetch_add(1, Ordering::Relaxed);
        if let Some(metrics) = &self.inner.config.metrics {
            metrics.retried();
        }
    }

    /// Calls the procedure named `procedure` with a body already written in `content_type`
    /// (JSON, say), without knowing its types, within the client's timeout and in the
    /// current trace: for tools that pass bodies through, such as `fibrpc call --json`.
    /// Sent once: the client cannot know whether the procedure is idempotent.
    ///
    /// # Errors
    /// As [`call`](Self::call), but for the errors a reply carries: the reply is returned
    /// whole, an error reply with its mark ([`Envelope::error`]) for the caller to read.
    pub async fn call_raw(
        &self,
        procedure: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> Result<Envelope, CallError<Infallible>> {
        let inner = &*self.inner;
        let timeout = inner.config.timeout;
        let deadline = Instant::now() + timeout;
        let trace = self.trace(procedure);
        let call = self.round_trip(procedure, content_type, body, deadline, &trace);
        let outcome = self
            .by_deadline(deadline, timeout, call)
            .instrument(trace.span.clone())
            .await;
        // An error reply is an answer here: the caller reads its mark.
        trace.finish(CallOutcome::of(&outcome));
        outcome
    }

    /// The span and context of a call of `procedure`, unless tracing is off.
    fn trace(&self, procedure: &str) -> CallTrace {
        let inner = &*self.inner;
        if !inner.config.trace {
            return CallTrace::off();
        }
        CallTrace::start(procedure, &inner.config.queue, || {
            inner.transport.messaging_system()
        })
    }

    pub fn stats(&self) -> ClientStats {
        ClientStats {
            pending: self.inner.pending.len(),
            unmatched_replies: self.inner.pending.unmatched_replies(),
            reconnects: self
                .inner
                .reply_address
                .borrow()
                .as_ref()
                .map_or(0, |current| current.generation),
            retries: self.inner.retries.load(Ordering::Relaxed),
            resumed: self.inner.resumed.load(Ordering::Relaxed),
        }
    }

    /// The reply address calls name now (None while it is being reopened).
    pub fn reply_address(&self) -> Option<String> {
        self.inner
            .reply_address
            .borrow()
            .as_ref()
            .map(|current| current.address.to_string())
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }
}

/// Failures after which the broker may not have taken a request: a lost connection (before
/// the confirm), no answer from the broker, no queue yet (a broker restart).
fn not_taken(error: &TransportError) -> bool {
    matches!(
        error,
        TransportError::Disconnected { .. }
            | TransportError::Timeout { .. }
            | TransportError::NoSuchQueue { .. }
    )
}
