//! The resumable reply queue ([`ReplyQueueMode::Resumable`]): a queue of the client's own
//! naming that outlives a lost connection, so that the replies sent meanwhile wait in it and
//! the client consumes them once it is back.
//!
//! Not exclusive (an exclusive queue dies with its connection), not auto-deleted (that too
//! would delete it when its consumer's connection goes); `x-expires` has the broker delete it
//! once unused that long, so a client that dies leaves nothing behind, and a client that
//! closes deletes it at once. Replies are acknowledged: a reply delivered to a connection
//! that died before reading it goes back to the queue. One acknowledgement (`multiple`) covers
//! every reply read while more were ready, up to [`ACK_EVERY`]: an ack per reply cost a
//! fifth of the throughput at 64 calls in flight.
//!
//! [`ReplyQueueMode::Resumable`]: crate::ReplyQueueMode::Resumable

use async_trait::async_trait;
use fibrpc_ports::{Envelope, ReplyInbox, TransportError};
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::Acker;
use lapin::{Channel, Consumer};

use crate::connection::Live;
use crate::errors::translate;
use crate::properties::to_envelope;

/// Replies read at most before they are acknowledged, when more keep coming.
const ACK_EVERY: usize = 64;

/// How the names of resumable reply queues begin; a uuid follows.
pub(crate) const PREFIX: &str = "fibrpc.reply.";

/// A fresh name for a resumable reply queue.
pub(crate) fn fresh_name() -> String {
    format!("{PREFIX}{}", uuid::Uuid::new_v4())
}

/// Declares (again) the reply queue `name` and consumes it on a channel of its own: a
/// refused consume closes only that channel, and the acknowledgements go on it. Returns once
/// the broker confirmed the consumer.
pub(crate) async fn open(
    live: &Live,
    name: String,
    expires: std::time::Duration,
) -> Result<Box<dyn ReplyInbox>, TransportError> {
    let channel = live.open_channel().await?;
    let mut arguments = FieldTable::default();
    let expires = i64::try_from(expires.as_millis())
        .unwrap_or(i64::MAX)
        .max(1);
    arguments.insert("x-expires".into(), AMQPValue::LongLongInt(expires));
    let options = QueueDeclareOptions {
        exclusive: false,
        auto_delete: false,
        durable: false,
        ..Default::default()
    };
    channel
        .queue_declare(name.as_str().into(), options, arguments)
        .await
        .map_err(|error| translate(&error, &name))?;
    let consumer = channel
        .basic_consume(
            name.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|error| translate(&error, &name))?;
    tracing::debug!(address = %name, "resumable reply queue open");
    Ok(Box::new(ResumableInbox {
        name,
        channel,
        consumer: Some(consumer),
        unacked: None,
        unacked_count: 0,
    }))
}

/// The reply queue `name` again, if the broker still has it (a passive declare first: one
/// that expired is not made afresh, its replies are gone and its calls must fail).
pub(crate) async fn resume(
    live: &Live,
    name: &str,
    expires: std::time::Duration,
) -> Result<Option<Box<dyn ReplyInbox>>, TransportError> {
    match crate::queue::consumers(live, name).await {
        Ok(_) => open(live, name.to_owned(), expires).await.map(Some),
        Err(TransportError::NoSuchQueue { .. }) => {
            tracing::warn!(address = %name, "the reply queue expired while disconnected");
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

/// The next delivery to a reply consumer; the consumer is dropped (None) once it ended, which
/// is reported as a lost connection.
pub(crate) async fn next_delivery(
    consumer: &mut Option<Consumer>,
) -> Result<Delivery, TransportError> {
    let next = match consumer.as_mut() {
        Some(consumer) => consumer.next().await,
        None => None,
    };
    delivered(consumer, next)
}

/// What the consumer's stream gave: a delivery, or the end of the consumer (then dropped).
fn delivered(
    consumer: &mut Option<Consumer>,
    next: Option<Result<Delivery, lapin::Error>>,
) -> Result<Delivery, TransportError> {
    let outcome = match next {
        Some(Ok(delivery)) => return Ok(delivery),
        Some(Err(error)) => TransportError::disconnected(error.to_string()),
        None => TransportError::disconnected(
            "the reply queue's consumer ended (connection lost or queue deleted)",
        ),
    };
    *consumer = None;
    Err(outcome)
}

struct ResumableInbox {
    name: String,
    channel: Channel,
    /// None once the consumer ended: the queue is then left for a resume (or `x-expires`).
    consumer: Option<Consumer>,
    /// The last reply read and not yet acknowledged, and how many are.
    unacked: Option<Acker>,
    unacked_count: usize,
}

impl ResumableInbox {
    /// Acknowledges every reply read so far (one `multiple` ack). A failed ack means the
    /// connection is going: those replies come again after a resume, and their second copies
    /// are dropped as unmatched.
    async fn ack_read(&mut self) {
        if let Some(acker) = self.unacked.take() {
            let _ = acker.ack(BasicAckOptions { multiple: true }).await;
        }
        self.unacked_count = 0;
    }
}

#[async_trait]
impl ReplyInbox for ResumableInbox {
    fn address(&self) -> &str {
        &self.name
    }

    fn resumable(&self) -> bool {
        true
    }

    async fn next_reply(&mut self) -> Result<Envelope, TransportError> {
        let ready = match self.consumer.as_mut() {
            Some(consumer) => consumer.next().now_or_never(),
            None => Some(None),
        };
        let delivery = match ready {
            Some(next) => delivered(&mut self.consumer, next),
            None => {
                // Nothing more is ready: acknowledge what was read before waiting.
                self.ack_read().await;
                next_delivery(&mut self.consumer).await
            }
        }?;
        self.unacked = Some(delivery.acker);
        self.unacked_count += 1;
        if self.unacked_count >= ACK_EVERY {
            self.ack_read().await;
        }
        Ok(to_envelope(&delivery.properties, delivery.data))
    }
}

impl Drop for ResumableInbox {
    fn drop(&mut self) {
        // Closed by its client (not lost): the queue goes now. Lost, it stays for a resume,
        // and the broker deletes it after `x-expires` if none comes.
        let (Some(_consumer), Ok(runtime)) =
            (self.consumer.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let channel = self.channel.clone();
        let name = std::mem::take(&mut self.name);
        runtime.spawn(async move {
            if let Err(error) = channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await
            {
                tracing::debug!(%error, address = %name, "could not delete the reply queue; it expires");
            }
            let _ = channel.close(200, "reply inbox closed".into()).await;
        });
    }
}
