//! The server side: the shared durable pull consumer, settling, and core NATS replies.

use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::pull;
use async_nats::jetstream::consumer::AckPolicy;
use async_nats::jetstream::stream::{Config as StreamConfig, RetentionPolicy};
use async_nats::jetstream::{self, AckKind};
use async_trait::async_trait;
use fibrpc_ports::{
    Envelope, IncomingRequest, ReplyTransport, RequestStream, Settle, TransportError,
};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::headers::{to_envelope, to_headers};
use crate::{names, NatsTransport};

/// How long a cancelled consumer waits for messages already on their way to it.
const DRAIN_LIMIT: Duration = Duration::from_millis(200);

/// How long JetStream waits for an acknowledgement before delivering again. A request pulled
/// just as its server stopped (the pull was answered after the stream was dropped) comes back
/// after this; servers answer within milliseconds (n is bounded), so it can be short.
const ACK_WAIT: Duration = Duration::from_secs(5);

/// How long one pull request lives on the server. A stopped server's last pull request
/// lingers this long and can still be handed a message (lost to it, back after `ACK_WAIT`),
/// so it is kept short; the stream renews its pulls as they expire.
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// Messages pulled at a time: one, so that nothing waits in this process that another
/// server could be answering.
const PULL_BATCH: usize = 1;

fn refused(error: &dyn std::fmt::Display) -> TransportError {
    TransportError::Refused {
        reason: error.to_string(),
    }
}

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
        .map_err(|error| refused(&error))
}

/// The stream and its one durable consumer, shared by every server of `queue`. The first
/// server to create the consumer sets its limit on unacknowledged requests.
pub(crate) async fn declare(
    jetstream: &jetstream::Context,
    queue: &str,
    prefetch: u16,
) -> Result<jetstream::consumer::Consumer<pull::Config>, TransportError> {
    let name = names::stream_name(queue);
    let stream = declare_stream(jetstream, queue).await?;
    stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                ack_policy: AckPolicy::Explicit,
                ack_wait: ACK_WAIT,
                max_ack_pending: if prefetch == 0 {
                    -1
                } else {
                    i64::from(prefetch)
                },
                ..Default::default()
            },
        )
        .await
        .map_err(|error| refused(&error))
}

#[async_trait]
impl ReplyTransport for NatsTransport {
    async fn consume_requests(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn RequestStream>, TransportError> {
        let consumer = declare(&self.jetstream, queue, prefetch).await?;
        let mut disconnections = self.disconnections.clone();
        disconnections.mark_unchanged();
        let messages = pull_messages(&consumer).await?;
        Ok(Box::new(NatsRequestStream {
            consumer,
            messages: Some(messages),
            disconnections,
            cancelled: false,
        }))
    }

    async fn send_reply(&self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        let headers = to_headers(&reply);
        self.client
            .publish_with_headers(reply_to.to_owned(), headers, reply.body.into())
            .await
            .map_err(|error| TransportError::disconnected(error.to_string()))?;
        // Ok must mean the server has the reply: the protocol acknowledges the request next.
        self.client
            .flush()
            .await
            .map_err(|error| TransportError::disconnected(error.to_string()))
    }
}

async fn pull_messages(
    consumer: &jetstream::consumer::Consumer<pull::Config>,
) -> Result<pull::Stream, TransportError> {
    consumer
        .stream()
        .max_messages_per_batch(PULL_BATCH)
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_EXPIRES / 4)
        .messages()
        .await
        .map_err(|error| TransportError::disconnected(error.to_string()))
}

struct NatsRequestStream {
    consumer: jetstream::consumer::Consumer<pull::Config>,
    messages: Option<pull::Stream>,
    disconnections: watch::Receiver<u64>,
    cancelled: bool,
}

fn lost() -> TransportError {
    TransportError::disconnected("NATS connection lost")
}

#[async_trait]
impl RequestStream for NatsRequestStream {
    async fn next_request(&mut self) -> Result<IncomingRequest, TransportError> {
        if self.cancelled {
            return Err(TransportError::Cancelled);
        }
        loop {
            if self.disconnections.has_changed().unwrap_or(true) {
                self.messages = None;
                return Err(lost());
            }
            let messages = self.messages.as_mut().ok_or_else(lost)?;
            let message = tokio::select! {
                message = messages.next() => message,
                _ = self.disconnections.changed() => {
                    self.messages = None;
                    return Err(lost());
                }
            };
            let message = match message {
                Some(Ok(message)) => message,
                Some(Err(error)) if error.kind() == pull::MessagesErrorKind::MissingHeartbeat => {
                    // A late heartbeat on a busy machine, not a lost connection (that comes
                    // as an event): pull afresh.
                    tracing::debug!(%error, "pulling again");
                    self.messages = Some(pull_messages(&self.consumer).await?);
                    continue;
                }
                Some(Err(error)) => {
                    self.messages = None;
                    return Err(TransportError::disconnected(error.to_string()));
                }
                None => {
                    self.messages = None;
                    return Err(TransportError::disconnected("the request consumer ended"));
                }
            };
            let envelope = to_envelope(message.headers.as_ref(), message.payload.to_vec());
            if envelope.is_expired_at(Instant::now()) {
                // Nobody waits for it any more: take it off the queue unanswered.
                let _ = message.ack_with(AckKind::Term).await;
                continue;
            }
            let redelivered = message
                .info()
                .map(|info| info.delivered > 1)
                .unwrap_or(false);
            let settle = NatsSettle {
                message: Some(message),
            };
            return Ok(IncomingRequest::new(
                envelope,
                redelivered,
                Box::new(settle),
            ));
        }
    }

    async fn cancel(&mut self) -> Result<(), TransportError> {
        self.cancelled = true;
        if let Some(mut messages) = self.messages.take() {
            // Hand back what was already pulled for us: at most one batch. Draining "until
            // nothing comes" would loop, since a NAKed message comes straight back.
            for _ in 0..PULL_BATCH {
                match tokio::time::timeout(DRAIN_LIMIT, messages.next()).await {
                    Ok(Some(Ok(message))) => {
                        let _ = message.ack_with(AckKind::Nak(None)).await;
                    }
                    _ => break,
                }
            }
        }
        Ok(())
    }
}

/// Settles one message; dropped unsettled, it asks for prompt redelivery (a NAK) rather than
/// leaving it to the consumer's ack wait.
struct NatsSettle {
    message: Option<jetstream::Message>,
}

impl NatsSettle {
    async fn settle(&mut self, kind: AckKind) -> Result<(), TransportError> {
        let Some(message) = self.message.take() else {
            return Ok(());
        };
        message
            .ack_with(kind)
            .await
            .map_err(|error| TransportError::disconnected(error.to_string()))
    }
}

#[async_trait]
impl Settle for NatsSettle {
    async fn ack(mut self: Box<Self>) -> Result<(), TransportError> {
        // A double ack waits for the server's confirmation that the ack was stored.
        let Some(message) = self.message.take() else {
            return Ok(());
        };
        message
            .double_ack()
            .await
            .map_err(|error| TransportError::disconnected(error.to_string()))
    }

    async fn reject(mut self: Box<Self>, requeue: bool) -> Result<(), TransportError> {
        self.settle(if requeue {
            AckKind::Nak(None)
        } else {
            AckKind::Term
        })
        .await
    }
}

impl Drop for NatsSettle {
    fn drop(&mut self) {
        let (Some(message), Ok(runtime)) =
            (self.message.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        runtime.spawn(async move {
            let _ = message.ack_with(AckKind::Nak(None)).await;
        });
    }
}
