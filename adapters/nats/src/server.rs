//! The server side: the shared durable pull consumer, settling, and core NATS replies.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::AckPolicy;
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy};
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use fibrpc_ports::{
    spawn_from_drop, Envelope, IncomingRequest, ReplyTransport, RequestStream, Settle,
    TransportError,
};
use tokio::sync::watch;

use crate::headers::{self, to_envelope};
use crate::pull::Puller;
use crate::{core_server, errors, names, unless_disconnected, NatsMode, NatsTransport};

/// How long a stopped consumer waits for a message its outstanding pull request may still
/// bring.
const DRAIN_LIMIT: Duration = Duration::from_millis(200);

/// Creates the stream that captures `queue`'s subject, if it does not exist.
pub(crate) async fn declare_stream(
    jetstream: &jetstream::Context,
    queue: &str,
) -> Result<jetstream::stream::Stream, TransportError> {
    jetstream
        .get_or_create_stream(StreamConfig {
            name: names::stream_name(queue),
            subjects: vec![names::subject(queue)],
            retention: RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await
        .map_err(|error| errors::create_stream(queue, &error))
}

/// The stream and its one durable consumer, shared by every server of `queue`. The first
/// server to create the consumer sets its limit on unacknowledged requests.
///
/// The ack wait: a request whose server died without a word (killed: no NAK from `Drop`),
/// or one pulled just as its server stopped, comes back after it, so it is short. A live
/// server keeps what it holds from it with progress acknowledgements (see `NatsSettle`).
pub(crate) async fn declare(
    jetstream: &jetstream::Context,
    queue: &str,
    prefetch: u16,
    ack_wait: Duration,
) -> Result<jetstream::consumer::Consumer<pull::Config>, TransportError> {
    let name = names::stream_name(queue);
    let stream = declare_stream(jetstream, queue).await?;
    stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait,
                max_ack_pending: if prefetch == 0 {
                    -1
                } else {
                    i64::from(prefetch)
                },
                ..Default::default()
            },
        )
        .await
        .map_err(|error| errors::create_consumer(queue, &error))
}

#[async_trait]
impl ReplyTransport for NatsTransport {
    fn messaging_system(&self) -> &'static str {
        "nats"
    }

    async fn consume_requests(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn RequestStream>, TransportError> {
        if self.mode == NatsMode::Core {
            // Core NATS pushes requests: there is no prefetch to set.
            return core_server::consume(self, queue).await;
        }
        let consumer = declare(&self.jetstream, queue, prefetch, self.ack_wait).await?;
        let mut disconnections = self.disconnections.clone();
        disconnections.mark_unchanged();
        let puller = Puller::start(
            &self.client,
            &self.jetstream,
            &consumer.cached_info().stream_name,
            &consumer.cached_info().name,
        )
        .await?;
        Ok(Box::new(NatsRequestStream {
            client: self.client.clone(),
            puller: Some(puller),
            disconnections,
            cancelled: false,
            // The consumer's own: another server may have created it with another.
            ack_wait: consumer.cached_info().config.ack_wait,
        }))
    }

    fn announce_procedures(&self, queue: &str, procedures: &[&'static str]) {
        let procedures = procedures.iter().map(|name| (*name).to_owned()).collect();
        self.announce(queue, procedures);
    }
}

struct NatsRequestStream {
    /// Where replies are published.
    client: async_nats::Client,
    /// None once the stream has ended (error, disconnection or cancel).
    puller: Option<Puller>,
    disconnections: watch::Receiver<u64>,
    cancelled: bool,
    ack_wait: Duration,
}

impl NatsRequestStream {
    /// Ends the stream with `error`; later calls report a disconnection.
    fn end(&mut self, error: TransportError) -> TransportError {
        self.puller = None;
        error
    }
}

#[async_trait]
impl RequestStream for NatsRequestStream {
    async fn next_request(&mut self) -> Result<IncomingRequest, TransportError> {
        if self.cancelled {
            return Err(TransportError::Cancelled);
        }
        loop {
            let puller = self.puller.as_mut().ok_or_else(errors::connection_lost)?;
            let message = match unless_disconnected(&mut self.disconnections, puller.next()).await {
                Ok(message) => message,
                Err(error) => return Err(self.end(error)),
            };
            if let Some(reason) = headers::unreadable(message.headers.as_ref()) {
                // The ports' rule for a malformed request: settled for good (TERM), one line,
                // on to the next. Should the TERM fail, it comes back after the ack wait and
                // is dropped again.
                tracing::warn!(%reason, "malformed request dropped");
                let _ = message.ack_with(AckKind::Term).await;
                continue;
            }
            let (waited, redelivered) = delivery_info(&message);
            let envelope = to_envelope(message.headers.as_ref(), message.payload.to_vec(), waited);
            if envelope.is_expired_at(Instant::now()) {
                // What a broker with per-message TTL would have done (nats-server 2.9 has
                // none): nobody waits for it any more. TERM takes it off the work queue
                // unanswered; should it fail, the request only comes back after the ack wait
                // and is skipped again.
                let _ = message.ack_with(AckKind::Term).await;
                tracing::debug!("request past its deadline: dropped before handing it out");
                continue;
            }
            let settle = NatsSettle::new(message, self.ack_wait, self.client.clone());
            return Ok(IncomingRequest::new(
                envelope,
                redelivered,
                Box::new(settle),
            ));
        }
    }

    async fn cancel(&mut self) -> Result<(), TransportError> {
        self.cancelled = true;
        if let Some(puller) = self.puller.take() {
            puller.hand_back(DRAIN_LIMIT).await;
        }
        Ok(())
    }
}

impl Drop for NatsRequestStream {
    fn drop(&mut self) {
        // As cancel, without waiting: only an outstanding pull request can bring anything.
        let Some(puller) = self.puller.take() else {
            return;
        };
        if puller.outstanding() {
            // Without a runtime, what the pull request brings comes back after the ack wait.
            spawn_from_drop(puller.hand_back(DRAIN_LIMIT));
        }
    }
}

/// How long the message was in the stream, and whether it was delivered before.
fn delivery_info(message: &jetstream::Message) -> (Duration, bool) {
    let Ok(info) = message.info() else {
        return (Duration::ZERO, false);
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|since| i128::try_from(since.as_nanos()).ok());
    let waited = now
        .map(|now| now - info.published.unix_timestamp_nanos())
        .and_then(|nanos| u64::try_from(nanos).ok())
        // Negative (this host's clock behind the server's): it did not wait.
        .map_or(Duration::ZERO, Duration::from_nanos);
    (waited, info.delivered > 1)
}

/// Settles one message; dropped unsettled, it asks for prompt redelivery (a NAK) rather than
/// leaving it to the consumer's ack wait.
struct NatsSettle {
    client: async_nats::Client,
    message: Option<jetstream::Message>,
    /// Sends progress acknowledgements while the request is held; stopped once it is settled
    /// or dropped. Its death with the process is what lets the ack wait redeliver.
    in_progress: tokio::task::AbortHandle,
}

impl NatsSettle {
    fn new(message: jetstream::Message, ack_wait: Duration, client: async_nats::Client) -> Self {
        let working = message.clone();
        // Well inside the ack wait, so that a progress ack delayed by a busy machine still
        // lands in time; never more often than every 100 ms.
        let every = (ack_wait / 3).max(Duration::from_millis(100));
        let in_progress = tokio::spawn(async move {
            let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                ticks.tick().await;
                // A lost one is made up by the next; a lost connection ends the stream anyway.
                let _ = working.ack_with(AckKind::Progress).await;
            }
        })
        .abort_handle();
        Self {
            client,
            message: Some(message),
            in_progress,
        }
    }

    fn take(&mut self) -> Option<jetstream::Message> {
        self.in_progress.abort();
        self.message.take()
    }
}

#[async_trait]
impl Settle for NatsSettle {
    async fn reply(&mut self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        crate::reply::send_reply(&self.client, reply_to, reply, true).await
    }

    async fn ack(mut self: Box<Self>) -> Result<(), TransportError> {
        let Some(message) = self.take() else {
            return Ok(());
        };
        // A double ack waits for the server to confirm it stored the ack: Ok means the
        // request will not come back.
        message
            .double_ack()
            .await
            .map_err(|error| errors::settle(&error))
    }

    async fn reject(mut self: Box<Self>, requeue: bool) -> Result<(), TransportError> {
        let Some(message) = self.take() else {
            return Ok(());
        };
        // NAK: deliver again now; TERM: never again (a work-queue stream drops it).
        let kind = if requeue {
            AckKind::Nak(None)
        } else {
            AckKind::Term
        };
        message
            .ack_with(kind)
            .await
            .map_err(|error| errors::settle(&error))
    }
}

impl Drop for NatsSettle {
    fn drop(&mut self) {
        let Some(message) = self.take() else {
            return;
        };
        // Without a runtime the ack wait brings it back.
        spawn_from_drop(async move {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        });
    }
}
