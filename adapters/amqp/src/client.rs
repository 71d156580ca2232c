//! The client side: publishing requests and the reply queue.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use async_trait::async_trait;
use fibrpc_ports::{
    Envelope, Flow, FlowWatch, ReplyInbox, RequestTransport, Stall, TransportError,
};
use lapin::options::{
    BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::types::ShortString;
use lapin::{Channel, Confirmation, Consumer};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::errors::translate;
use crate::properties::{to_envelope, to_properties};
use crate::reply_queue;
use crate::{AmqpTransport, ReplyQueueMode, RequestGuarantees};

/// RabbitMQ's pseudo-queue for direct reply-to.
const DIRECT_REPLY_TO: &str = "amq.rabbitmq.reply-to";

#[async_trait]
impl RequestTransport for AmqpTransport {
    fn messaging_system(&self) -> &'static str {
        "rabbitmq"
    }

    async fn open_reply_inbox(&self) -> Result<Box<dyn ReplyInbox>, TransportError> {
        let live = self.link.live().await?;
        let mode = self.config().reply_queue;
        // Direct reply-to allows one reply consumer per channel and requires publishing the
        // requests on it: each inbox gets a channel of its own, which then carries requests.
        let channel = match mode {
            ReplyQueueMode::Resumable => {
                let expires = self.config().reply_queue_expires;
                return reply_queue::open(&live, reply_queue::fresh_name(), expires).await;
            }
            ReplyQueueMode::Exclusive => live.publisher.clone(),
            ReplyQueueMode::Direct => {
                let confirm = self.config().requests.confirm;
                Arc::new(live.open_publishing_channel(confirm).await?)
            }
        };
        // The resumable queue returned above: what is left is direct reply-to or the
        // tutorial's exclusive queue, named by the broker.
        let address = if mode == ReplyQueueMode::Direct {
            DIRECT_REPLY_TO.to_owned()
        } else {
            let options = QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            };
            channel
                .queue_declare("".into(), options, FieldTable::default())
                .await
                .map_err(|error| translate(&error, "<reply queue>"))?
                .name()
                .to_string()
        };
        let options = BasicConsumeOptions {
            no_ack: true,
            ..Default::default()
        };
        // Returns once the broker confirmed the consumer: replies are received from now on.
        let consumer = channel
            .basic_consume(
                address.as_str().into(),
                "".into(),
                options,
                FieldTable::default(),
            )
            .await
            .map_err(|error| translate(&error, &address))?;
        if mode == ReplyQueueMode::Direct {
            self.link.use_for_requests(channel.clone());
        }
        tracing::debug!(%address, "reply queue open");
        Ok(Box::new(AmqpReplyInbox {
            address,
            channel,
            consumer: Some(consumer),
            owns_channel: mode == ReplyQueueMode::Direct,
        }))
    }

    /// Only a resumable reply queue outlives its connection; direct reply-to and exclusive
    /// queues do not.
    async fn resume_reply_inbox(
        &self,
        address: &str,
    ) -> Result<Option<Box<dyn ReplyInbox>>, TransportError> {
        if !address.starts_with(reply_queue::PREFIX) {
            return Ok(None);
        }
        let live = self.link.live().await?;
        reply_queue::resume(&live, address, self.config().reply_queue_expires).await
    }

    async fn send_request(&self, queue: &str, request: Envelope) -> Result<(), TransportError> {
        let live = self.link.live().await?;
        let channel = if request.reply_to.as_deref() == Some(DIRECT_REPLY_TO) {
            // The reply comes to the consumer on the channel that published the request; on
            // a channel without one, RabbitMQ refuses the publish by closing the channel.
            self.link.direct_reply_channel().ok_or_else(|| {
                TransportError::disconnected("no direct reply-to inbox is open on this connection")
            })?
        } else {
            live.publisher.clone()
        };
        let guarantees = self.config().requests;
        let unconfirmed = self.link.unconfirmed_publishes();
        publish(unconfirmed, &channel, queue, request, guarantees).await
    }

    /// A blocked connection, else a request queue without consumers (a passive declare:
    /// the queue exists, or the request would have come back as unroutable).
    async fn stall(&self, queue: &str) -> Option<Stall> {
        if let Flow::Blocked { reason } = &*self.link.flow().borrow() {
            return Some(Stall::Blocked {
                reason: reason.clone(),
            });
        }
        let live = self.link.live().await.ok()?;
        match crate::queue::consumers(&live, queue).await {
            Ok(0) => Some(Stall::NoConsumer {
                queue: queue.to_owned(),
            }),
            _ => None,
        }
    }

    fn flow(&self) -> Option<FlowWatch> {
        Some(self.link.flow())
    }
}

/// Publishes to the default exchange, `mandatory`, and waits for the broker's confirm: an
/// unroutable message comes back inside the confirm, which makes it `NoSuchQueue`. What
/// `guarantees` turns off is skipped: without confirms it returns once the message is written.
///
/// A caller may stop waiting half-way (its reply came first, or its deadline passed). lapin
/// keeps state for every publish whose confirm future is dropped unresolved, so abandoned
/// publishes would leak memory without bound: the publish is a [`ConfirmedPublish`], which
/// hands itself to a task of its own when dropped unfinished. Until its confirm it holds one
/// of the connection's slots for unconfirmed publishes.
pub(crate) async fn publish(
    unconfirmed: &Arc<Semaphore>,
    channel: &Arc<Channel>,
    queue: &str,
    mut envelope: Envelope,
    guarantees: RequestGuarantees,
) -> Result<(), TransportError> {
    if !guarantees.expiration {
        envelope.deadline = None;
    }
    let properties = to_properties(&envelope)?;
    // Waiting here is safe to abandon: nothing is published yet.
    let slot = unconfirmed
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| TransportError::disconnected("the connection is closing"))?;
    let options = BasicPublishOptions {
        // RabbitMQ returns replies to direct reply-to addresses as unroutable even when it
        // delivers them, so `mandatory` says nothing there.
        mandatory: guarantees.mandatory && !queue.starts_with(DIRECT_REPLY_TO),
        ..Default::default()
    };
    let unconfirmed_returns = options.mandatory && !guarantees.confirm;
    let channel = channel.clone();
    let publisher = unconfirmed_returns.then(|| channel.clone());
    let routing_key: ShortString = queue.into();
    let publishing = async move {
        channel
            .basic_publish("".into(), routing_key, options, &envelope.body, properties)
            .await?
            .await
    };
    let confirmation = ConfirmedPublish::new(publishing, slot)
        .await
        .map_err(|error| translate(&error, queue))?;
    if let Some(channel) = publisher {
        drain_returns(&channel).await;
    }
    match confirmation {
        Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
        Confirmation::Ack(Some(_returned)) => Err(TransportError::NoSuchQueue {
            queue: queue.to_owned(),
        }),
        Confirmation::Nack(_) => Err(TransportError::Refused {
            reason: format!("the broker did not accept the message for {queue:?}"),
        }),
    }
}

/// Without confirms, lapin keeps each returned message until `wait_for_confirms` takes it
/// (it tells nobody of its arrival: lapin issue 254), so each publish takes those that came
/// so far: memory stays bounded, and each is said once. Their calls end at their deadline.
async fn drain_returns(channel: &Channel) {
    let Ok(returned) = channel.wait_for_confirms().await else {
        return;
    };
    for message in returned {
        tracing::warn!(
            queue = %message.delivery.routing_key,
            correlation_id = ?message.delivery.properties.correlation_id(),
            "a request no queue took came back (no publisher confirms: its call will time out)"
        );
    }
}

type Publishing = Pin<Box<dyn Future<Output = Result<Confirmation, lapin::Error>> + Send>>;

/// A publish and its confirm that run to the end even when nobody waits for them any more.
struct ConfirmedPublish {
    publishing: Option<Publishing>,
    slot: Option<OwnedSemaphorePermit>,
}

impl ConfirmedPublish {
    fn new(
        publishing: impl Future<Output = Result<Confirmation, lapin::Error>> + Send + 'static,
        slot: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            publishing: Some(Box::pin(publishing)),
            slot: Some(slot),
        }
    }
}

impl Future for ConfirmedPublish {
    type Output = Result<Confirmation, lapin::Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(publishing) = self.publishing.as_mut() else {
            return Poll::Ready(Err(lapin::ErrorKind::FutureCompleted.into()));
        };
        let outcome = ready!(publishing.as_mut().poll(cx));
        self.publishing = None;
        self.slot = None;
        Poll::Ready(outcome)
    }
}

impl Drop for ConfirmedPublish {
    fn drop(&mut self) {
        let (Some(publishing), Ok(runtime)) = (
            self.publishing.take(),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        let slot = self.slot.take();
        runtime.spawn(async move {
            let _ = publishing.await;
            drop(slot);
        });
    }
}

struct AmqpReplyInbox {
    address: String,
    channel: Arc<Channel>,
    consumer: Option<Consumer>,
    /// The channel is this inbox's alone (direct reply-to) and closes with it.
    owns_channel: bool,
}

#[async_trait]
impl ReplyInbox for AmqpReplyInbox {
    fn address(&self) -> &str {
        &self.address
    }

    async fn next_reply(&mut self) -> Result<Envelope, TransportError> {
        let delivery = reply_queue::next_delivery(&mut self.consumer).await?;
        Ok(to_envelope(&delivery.properties, delivery.data))
    }
}

impl Drop for AmqpReplyInbox {
    fn drop(&mut self) {
        // Cancelling lets the broker delete the auto-delete queue now rather than with the
        // connection; without a runtime there is nothing to run it on, and the connection's
        // end cleans up anyway.
        let (Some(consumer), Ok(runtime)) =
            (self.consumer.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let channel = self.channel.clone();
        let owns_channel = self.owns_channel;
        runtime.spawn(async move {
            if owns_channel {
                let _ = channel.close(200, "reply inbox closed".into()).await;
            } else {
                let _ = channel
                    .basic_cancel(consumer.tag(), BasicCancelOptions::default())
                    .await;
            }
        });
    }
}
