//! The resumable reply queue ([`ReplyQueueMode::Resumable`]): a queue of the client's own
//! naming that outlives a lost connection, so that the replies sent meanwhile wait in it and
//! the client consumes them once it is back.
//!
//! Not exclusive (an exclusive queue dies with its connection), not auto-deleted (that too
//! would delete it when its consumer's connection goes); `x-expires` has the broker delete it
//! once unused that long, so a client that dies leaves nothing behind, and a client that
//! closes deletes it at once. Replies are acknowledged one by one: a reply delivered to a
//! connection that died before reading it goes back to the queue.
//!
//! [`ReplyQueueMode::Resumable`]: crate::ReplyQueueMode::Resumable

use async_trait::async_trait;
use fibrpc_ports::{Envelope, ReplyInbox, TransportError};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, Consumer};

use crate::connection::Live;
use crate::errors::translate;
use crate::properties::to_envelope;

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
    let ended = || {
        TransportError::disconnected(
            "the reply queue's consumer ended (connection lost or queue deleted)",
        )
    };
    let outcome = match consumer.as_mut().ok_or_else(ended)?.next().await {
        Some(Ok(delivery)) => return Ok(delivery),
        Some(Err(error)) => TransportError::disconnected(error.to_string()),
        None => ended(),
    };
    *consumer = None;
    Err(outcome)
}

struct ResumableInbox {
    name: String,
    channel: Channel,
    /// None once the consumer ended: the queue is then left for a resume (or `x-expires`).
    consumer: Option<Consumer>,
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
        let delivery = next_delivery(&mut self.consumer).await?;
        // A failed ack means the connection is going: the reply comes again after a resume,
        // and its second copy is dropped as unmatched.
        let _ = delivery.acker.ack(BasicAckOptions::default()).await;
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
