//! The server side: consuming the request queue (declared only if missing, see `queue`),
//! settling requests, publishing replies.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fibrpc_ports::{
    spawn_from_drop, Envelope, FlowWatch, IncomingRequest, ReplyTransport, RequestStream, Settle,
    TransportError,
};
use futures_util::StreamExt;
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions,
    BasicQosOptions, BasicRejectOptions,
};
use lapin::types::FieldTable;
use lapin::Acker;
use lapin::{Channel, Consumer};

use crate::acks::Acks;
use crate::client::publish;
use crate::connection::Live;
use crate::errors::translate;
use crate::properties::{to_envelope, to_properties};
use crate::queue::ensure_request_queue;
use crate::AmqpTransport;

/// How long a cancelled consumer is given to hand back what the broker had already sent it.
const DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Attempts at consuming a queue found existing, when the broker drops the connection at the
/// consume (see `consume_requests`).
const CONSUME_ATTEMPTS: u32 = 3;

#[async_trait]
impl ReplyTransport for AmqpTransport {
    fn messaging_system(&self) -> &'static str {
        "rabbitmq"
    }

    async fn consume_requests(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn RequestStream>, TransportError> {
        let mut attempt = 1;
        loop {
            let live = self.link.live().await?;
            let found = ensure_request_queue(&live, queue, &self.config().request_queue).await?;
            match consume(&live, queue, prefetch).await {
                // RabbitMQ 3.10 shows a quorum queue declared elsewhere a moment ago before its
                // replica runs, and answers a consume then with INTERNAL_ERROR, closing the
                // connection: seen with two servers starting at once (the second one's declare
                // succeeds too, so whoever declared it, try again on a new connection).
                Err(error) if error.is_disconnection() && attempt < CONSUME_ATTEMPTS => {
                    tracing::debug!(%queue, %error, attempt, "consuming again");
                    attempt += 1;
                }
                outcome => {
                    tracing::debug!(%queue, ?found, prefetch, "consuming requests");
                    return outcome;
                }
            }
        }
    }

    fn flow(&self) -> Option<FlowWatch> {
        Some(self.link.flow())
    }
}

impl AmqpTransport {
    /// Publishes `reply` to a reply address outside any request, with publisher confirms
    /// and `mandatory` (so a missing address is [`TransportError::NoSuchQueue`]): for tools and
    /// tests. A server answers through the request instead ([`IncomingRequest::reply`]).
    ///
    /// # Errors
    /// As a request's publish: `NoSuchQueue`, `Disconnected`, a negative confirm.
    pub async fn send_reply(&self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        let live = self.link.live().await?;
        publish(
            self.link.unconfirmed_publishes(),
            &live.publisher,
            reply_to,
            reply,
            self.config().requests,
        )
        .await
    }
}

struct AmqpRequestStream {
    /// The consumer's channel and the acks sent on it.
    acks: Arc<Acks>,
    consumer: Option<Consumer>,
    cancelled: bool,
}

#[async_trait]
impl RequestStream for AmqpRequestStream {
    async fn next_request(&mut self) -> Result<IncomingRequest, TransportError> {
        if self.cancelled {
            return Err(TransportError::Cancelled);
        }
        let ended = || {
            TransportError::disconnected(
                "the request consumer ended (connection lost or cancelled by the broker)",
            )
        };
        let consumer = self.consumer.as_mut().ok_or_else(ended)?;
        match consumer.next().await {
            Some(Ok(delivery)) => {
                let envelope = to_envelope(&delivery.properties, delivery.data);
                self.acks.delivered(delivery.delivery_tag);
                let settle = AmqpSettle {
                    acker: Some(delivery.acker),
                    tag: delivery.delivery_tag,
                    acks: self.acks.clone(),
                };
                Ok(IncomingRequest::new(
                    envelope,
                    delivery.redelivered,
                    Box::new(settle),
                ))
            }
            Some(Err(error)) => {
                self.consumer = None;
                Err(TransportError::disconnected(error.to_string()))
            }
            None => {
                self.consumer = None;
                Err(ended())
            }
        }
    }

    async fn cancel(&mut self) -> Result<(), TransportError> {
        self.cancelled = true;
        match self.consumer.take() {
            Some(consumer) => cancel_and_hand_back(self.acks.channel().clone(), consumer).await,
            None => Ok(()),
        }
    }
}

impl Drop for AmqpRequestStream {
    fn drop(&mut self) {
        let Some(consumer) = self.consumer.take() else {
            return;
        };
        let channel = self.acks.channel().clone();
        // Without a runtime, the channel closing when its last handle goes hands all back.
        spawn_from_drop(async move {
            let _ = cancel_and_hand_back(channel, consumer).await;
        });
    }
}

/// Stops the consumer, then returns to the queue the requests the broker had already sent
/// it (up to the prefetch) that were never handed out.
async fn cancel_and_hand_back(
    channel: Arc<Channel>,
    mut consumer: Consumer,
) -> Result<(), TransportError> {
    let cancelled = channel
        .basic_cancel(consumer.tag(), BasicCancelOptions::default())
        .await
        .map_err(|error| translate(&error, ""));
    let requeue = BasicNackOptions {
        requeue: true,
        ..Default::default()
    };
    let mut handed_back = 0;
    while let Ok(Some(Ok(delivery))) = tokio::time::timeout(DRAIN_LIMIT, consumer.next()).await {
        let _ = delivery.acker.nack(requeue).await;
        handed_back += 1;
    }
    tracing::debug!(handed_back, "consumer cancelled");
    cancelled
}

/// Starts a consumer of `queue` on a channel of its own: its prefetch window is its own, and
/// an error on it does not close the publishing channel.
async fn consume(
    live: &Live,
    queue: &str,
    prefetch: u16,
) -> Result<Box<dyn RequestStream>, TransportError> {
    // A channel per consumer: its prefetch window is its own, and replies go out on it.
    let channel = Arc::new(live.open_channel().await?);
    channel
        .basic_qos(prefetch, BasicQosOptions::default())
        .await
        .map_err(|error| translate(&error, queue))?;
    let consumer = channel
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|error| translate(&error, queue))?;
    Ok(Box::new(AmqpRequestStream {
        acks: Arc::new(Acks::new(channel)),
        consumer: Some(consumer),
        cancelled: false,
    }))
}

/// Settles one delivery; dropped unsettled, it sends the request back to the queue.
struct AmqpSettle {
    /// lapin's handle for this delivery, for a reject or nack; None once settled.
    acker: Option<Acker>,
    tag: u64,
    /// Acks go through the channel's batches. Also keeps the channel open while the request
    /// is out, even after the stream is cancelled and dropped: closing it would requeue the
    /// request, and its ack could not be sent.
    acks: Arc<Acks>,
}

impl AmqpSettle {
    /// Settles the delivery alone (a reject or nack), then lets the channel's batches of acks
    /// go past it.
    async fn settle_alone(
        &mut self,
        how: impl AsyncFnOnce(Acker) -> Result<bool, lapin::Error>,
    ) -> Result<(), TransportError> {
        let Some(acker) = self.acker.take() else {
            return Ok(());
        };
        let outcome = settled(how(acker).await);
        self.acks.settled_alone(self.tag);
        outcome
    }
}

/// lapin answers `false` when the channel closed under the delivery: the broker will deliver
/// the request again, so it was not settled.
fn settled(outcome: Result<bool, lapin::Error>) -> Result<(), TransportError> {
    match outcome {
        Ok(true) => Ok(()),
        Ok(false) => Err(TransportError::disconnected(
            "the request's channel closed; the broker will deliver it again",
        )),
        Err(error) => Err(translate(&error, "")),
    }
}

#[async_trait]
impl Settle for AmqpSettle {
    async fn ack(mut self: Box<Self>) -> Result<(), TransportError> {
        if self.acker.take().is_none() {
            return Ok(());
        }
        self.acks.ack(self.tag).await
    }

    async fn reject(mut self: Box<Self>, requeue: bool) -> Result<(), TransportError> {
        self.settle_alone(async |acker| acker.reject(BasicRejectOptions { requeue }).await)
            .await
    }

    /// Publishes the reply on the channel that delivered the request, where the ack will
    /// follow: RabbitMQ handles one channel's methods in order, so it has routed the reply
    /// before it sees the ack, and no publisher confirm is needed (the consumer channel is
    /// not in confirm mode). Returns once the reply is written: lapin sends queued acks ahead
    /// of queued publishes, so an ack queued earlier could overtake it. Not `mandatory`: a
    /// reply to a caller that has gone is dropped by the broker, and without confirms lapin
    /// would keep every returned one.
    async fn reply(&mut self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        let properties = to_properties(&reply)?;
        self.acks
            .channel()
            .basic_publish(
                "".into(),
                reply_to.into(),
                BasicPublishOptions::default(),
                &reply.body,
                properties,
            )
            .await
            .map(drop)
            .map_err(|error| translate(&error, reply_to))
    }
}

impl Drop for AmqpSettle {
    fn drop(&mut self) {
        let Some(acker) = self.acker.take() else {
            return;
        };
        let (acks, tag) = (self.acks.clone(), self.tag);
        // Without a runtime, the channel closing when its last handle goes requeues it.
        spawn_from_drop(async move {
            let requeue = BasicNackOptions {
                requeue: true,
                ..Default::default()
            };
            let _ = acker.nack(requeue).await;
            acks.settled_alone(tag);
        });
    }
}
