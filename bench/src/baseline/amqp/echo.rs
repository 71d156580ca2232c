//! The bare echo server: each request's body goes back to its `reply_to` with its
//! `correlation_id`, and the request is acknowledged once its reply is written.
//!
//! The fastest of the servers we tried (docs/performance.md): deliveries are taken in
//! batches of whatever is ready, the batch's replies are published together, and once they
//! are written one `multiple` ack settles the batch. A task per delivery, or every delivery in
//! flight at once in one task (`for_each_concurrent`), each publish then ack, cost the server
//! 30-60% more CPU per call and the broker slightly more, at no gain in throughput.
//!
//! The ack waits for the publishes to be written: lapin sends a queued ack ahead of queued
//! publishes (publishes go to a lower-priority queue), so an ack issued before its reply is
//! written can reach the broker first, and a request could be dropped whose reply it never
//! got. After the write, the broker sees the reply first: it handles one channel's frames in
//! order.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use fibrpc_ports::TransportError;
use futures_util::{FutureExt, StreamExt};
use lapin::message::Delivery;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, Consumer, PublisherConfirm};
use tokio::task::JoinHandle;

use super::translate;

/// A running echo server, on a connection of its own.
pub struct BareEcho {
    connection: Connection,
    serving: JoinHandle<()>,
    echoed: Arc<AtomicU64>,
}

impl BareEcho {
    /// Consumes `queue` with `prefetch` requests unacknowledged at most, and echoes until
    /// stopped. An existing queue is used as it is (whoever declared it chose its kind); a
    /// missing one is declared as the tutorial does, a classic queue.
    ///
    /// # Errors
    /// `Unreachable` when the broker cannot be reached; the translated broker error when the
    /// queue cannot be declared or consumed.
    pub async fn start(url: &str, queue: &str, prefetch: u16) -> Result<Self, TransportError> {
        let name = format!("fibrpc bare-echo {}", std::process::id());
        let connection = super::connect(url, &name).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|error| translate(&error, queue))?;
        channel
            .basic_qos(prefetch, BasicQosOptions::default())
            .await
            .map_err(|error| translate(&error, queue))?;
        ensure_queue(&connection, queue).await?;
        let consumer = channel
            .basic_consume(
                queue.into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(|error| translate(&error, queue))?;
        let echoed = Arc::new(AtomicU64::new(0));
        let serving = tokio::spawn(echo(channel, consumer, echoed.clone()));
        Ok(Self {
            connection,
            serving,
            echoed,
        })
    }
}

#[async_trait]
impl crate::baseline::BareEcho for BareEcho {
    /// Requests answered so far.
    fn echoed(&self) -> u64 {
        self.echoed.load(Ordering::Relaxed)
    }

    /// Resolves when the server stops by itself: its connection or consumer is gone.
    async fn ended(&mut self) {
        let _ = (&mut self.serving).await;
    }

    /// Closes the connection: what was delivered and not yet acknowledged goes back to the
    /// queue.
    async fn stop(self: Box<Self>) {
        self.serving.abort();
        let _ = self.connection.close(200, "stopped".into()).await;
    }
}

/// A passive declare first, each step on a channel of its own: the broker answers a failed
/// declare (no such queue; other arguments than the existing queue's) by closing the channel.
async fn ensure_queue(connection: &Connection, queue: &str) -> Result<(), TransportError> {
    let channel = || async {
        connection
            .create_channel()
            .await
            .map_err(|error| translate(&error, queue))
    };
    let passive = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let looking = channel().await?;
    let looked = looking
        .queue_declare(queue.into(), passive, FieldTable::default())
        .await;
    match looked.map_err(|error| translate(&error, queue)) {
        Ok(_) => {
            let _ = looking.close(200, "done".into()).await;
            Ok(())
        }
        Err(TransportError::NoSuchQueue { .. }) => {
            let declaring = channel().await?;
            declaring
                .queue_declare(
                    queue.into(),
                    QueueDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .map_err(|error| translate(&error, queue))?;
            let _ = declaring.close(200, "done".into()).await;
            Ok(())
        }
        Err(error) => Err(error),
    }
}

/// Echoes until the consumer ends (connection lost, or stopped).
async fn echo(channel: Channel, mut consumer: Consumer, echoed: Arc<AtomicU64>) {
    let mut batch = Vec::new();
    while let Some(Ok(first)) = consumer.next().await {
        batch.push(first);
        while let Some(Some(Ok(more))) = consumer.next().now_or_never() {
            batch.push(more);
        }
        // In delivery order; a request without `reply_to` has nobody to answer and is settled
        // with the rest.
        let written = futures_util::future::join_all(
            batch
                .iter()
                .filter_map(|delivery| reply(&channel, delivery)),
        )
        .await;
        if written.iter().any(Result::is_err) {
            return;
        }
        let Some(last) = batch.last() else { continue };
        let settled = channel
            .basic_ack(last.delivery_tag, BasicAckOptions { multiple: true })
            .await;
        if settled.is_err() {
            return;
        }
        echoed.fetch_add(batch.len() as u64, Ordering::Relaxed);
        batch.clear();
    }
}

/// Publishes `delivery`'s body to its `reply_to` with its correlation id; resolves once
/// written. None when there is nowhere to reply to.
fn reply<'a>(
    channel: &'a Channel,
    delivery: &'a Delivery,
) -> Option<impl Future<Output = lapin::Result<PublisherConfirm>> + 'a> {
    let reply_to = delivery.properties.reply_to().clone()?;
    let mut properties = BasicProperties::default();
    if let Some(id) = delivery.properties.correlation_id() {
        properties = properties.with_correlation_id(id.clone());
    }
    Some(channel.basic_publish(
        "".into(),
        reply_to,
        BasicPublishOptions::default(),
        &delivery.data,
        properties,
    ))
}
