//! The RPC client: calls fib(n) on whichever server consumes the request queue.

mod dispatch;
mod pending;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc_domain::{BigNumber, FibRequest};
use fibrpc_ports::{Envelope, RequestTransport, TransportError};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use self::dispatch::ReplyAddress;
use self::pending::PendingCalls;
use crate::{Backoff, CallError, Codec};

/// Whether a failed call is sent again. Only for idempotent procedures (fib is one): a call
/// whose request was taken by a server but whose reply was lost runs twice.
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
    pub codec: Codec,
    /// Calls in flight at most; further callers wait for a slot (within their deadline).
    pub max_in_flight: usize,
    pub retry: RetryPolicy,
    /// How the client waits between attempts to reopen a lost reply address.
    pub reconnect: Backoff,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            queue: "rpc_queue".to_owned(),
            timeout: Duration::from_secs(5),
            codec: Codec::Bincode,
            max_in_flight: 4096,
            retry: RetryPolicy::Never,
            reconnect: Backoff::default(),
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
}

/// A client of the fib procedure. Cheap to clone; clones share one reply address and the
/// calls in flight on it. The reply address closes when the last clone is dropped.
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
        let first = ReplyAddress {
            address: inbox.address().into(),
            generation: 0,
        };
        let (address_sender, reply_address) = watch::channel(Some(first));
        let pending = Arc::new(PendingCalls::default());
        let dispatcher = tokio::spawn(dispatch::run(
            transport.clone(),
            inbox,
            pending.clone(),
            address_sender,
            config.reconnect,
        ));
        Ok(Self {
            inner: Arc::new(Inner {
                in_flight: Semaphore::new(config.max_in_flight.max(1)),
                retries: AtomicU64::new(0),
                transport,
                config,
                pending,
                reply_address,
                dispatcher,
            }),
        })
    }

    /// fib(n), computed by a server.
    pub async fn call(&self, n: u64) -> Result<BigNumber, CallError> {
        self.call_with_timeout(n, self.inner.config.timeout).await
    }

    pub async fn call_with_timeout(
        &self,
        n: u64,
        timeout: Duration,
    ) -> Result<BigNumber, CallError> {
        let deadline = Instant::now() + timeout;
        let attempts = async {
            let mut attempt = 0;
            loop {
                match self.attempt(n, deadline).await {
                    Err(error) if error.is_retryable() => {
                        let RetryPolicy::Idempotent { backoff } = self.inner.config.retry else {
                            return Err(error);
                        };
                        tracing::debug!(%error, attempt, "call failed; sending it again");
                        self.inner.retries.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(backoff.delay(attempt)).await;
                        attempt += 1;
                    }
                    outcome => return outcome,
                }
            }
        };
        tokio::time::timeout_at(deadline, attempts)
            .await
            .unwrap_or(Err(CallError::Timeout(timeout)))
    }

    async fn attempt(&self, n: u64, deadline: Instant) -> Result<BigNumber, CallError> {
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
        let (_entry, mut reply) = inner
            .pending
            .register(correlation_id.clone(), reply_to.generation)?;
        let request = Envelope {
            correlation_id: Some(correlation_id),
            reply_to: Some(reply_to.address.to_string()),
            content_type: Some(inner.config.codec.content_type().to_owned()),
            deadline: Some(deadline.into_std()),
            body: inner.config.codec.encode_request(FibRequest { n }),
        };
        // The reply can come before the broker's word that it took the request (a publisher
        // confirm, say): a reply proves it did, so the call does not wait for that word. A
        // refusal (no such queue, a negative confirm) that comes first fails the call at once.
        let sending = inner.transport.send_request(&inner.config.queue, request);
        let replied = tokio::select! {
            biased;
            sent = sending => {
                sent?;
                reply.await
            }
            replied = &mut reply => replied,
        };
        let reply = replied.map_err(|_| TransportError::disconnected("reply loop ended"))??;
        let codec = Codec::for_content_type(reply.content_type.as_deref()).map_err(|error| {
            CallError::BadReply {
                reason: error.to_string(),
            }
        })?;
        let outcome = codec
            .decode_reply(&reply.body)
            .map_err(|error| CallError::BadReply { reason: error.0 })?;
        Ok(outcome?.value)
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

#[cfg(test)]
mod tests;
