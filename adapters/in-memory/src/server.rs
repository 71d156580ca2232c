use std::sync::Arc;

use async_trait::async_trait;
use fibrpc_ports::{
    Envelope, IncomingRequest, ReplyTransport, RequestStream, Settle, TransportError,
};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::broker::{InMemoryBroker, InMemoryTransport};
use crate::queue::RequestQueue;

#[async_trait]
impl ReplyTransport for InMemoryTransport {
    fn messaging_system(&self) -> &'static str {
        "in_memory"
    }

    async fn consume_requests(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn RequestStream>, TransportError> {
        let mut connection = self.broker.watch_connection();
        connection.mark_unchanged();
        // As in AMQP, a prefetch of 0 means no limit.
        let unsettled_limit = match prefetch {
            0 => Semaphore::MAX_PERMITS,
            limit => usize::from(limit),
        };
        Ok(Box::new(InMemoryRequestStream {
            broker: self.broker.clone(),
            queue: self.broker.declare_queue(queue),
            unsettled: Arc::new(Semaphore::new(unsettled_limit)),
            connection,
            cancelled: false,
        }))
    }
}

struct InMemoryRequestStream {
    broker: InMemoryBroker,
    queue: Arc<RequestQueue>,
    /// One permit per request handed out and not yet settled: the prefetch window.
    unsettled: Arc<Semaphore>,
    connection: watch::Receiver<u64>,
    cancelled: bool,
}

impl InMemoryRequestStream {
    fn disconnected() -> TransportError {
        TransportError::disconnected("in-memory broker connection lost")
    }
}

#[async_trait]
impl RequestStream for InMemoryRequestStream {
    async fn next_request(&mut self) -> Result<IncomingRequest, TransportError> {
        if self.cancelled {
            return Err(TransportError::Cancelled);
        }
        if self.connection.has_changed().unwrap_or(true) {
            return Err(Self::disconnected());
        }
        let mut connection = self.connection.clone();
        let lost = connection.changed();
        tokio::pin!(lost);
        let permit = tokio::select! {
            permit = self.unsettled.clone().acquire_owned() => {
                permit.map_err(|_| TransportError::Cancelled)?
            }
            _ = &mut lost => return Err(Self::disconnected()),
        };
        let request = tokio::select! {
            request = self.queue.pop() => request,
            _ = &mut lost => return Err(Self::disconnected()),
        };
        let settle = InMemorySettle {
            broker: self.broker.clone(),
            queue: self.queue.clone(),
            envelope: Some(request.envelope.clone()),
            connection: self.connection.clone(),
            _permit: permit,
        };
        Ok(IncomingRequest::new(
            request.envelope,
            request.redelivered,
            Box::new(settle),
        ))
    }

    async fn cancel(&mut self) -> Result<(), TransportError> {
        // Requests are taken from the queue only when asked for, so none is held back here.
        self.cancelled = true;
        Ok(())
    }
}

/// Settles one delivery; if dropped unsettled, the request goes back to its queue.
struct InMemorySettle {
    broker: InMemoryBroker,
    queue: Arc<RequestQueue>,
    envelope: Option<Envelope>,
    connection: watch::Receiver<u64>,
    _permit: OwnedSemaphorePermit,
}

impl InMemorySettle {
    /// After a connection loss a broker has already requeued the delivery: settling fails.
    fn check_connected(&mut self) -> Result<(), TransportError> {
        if self.connection.has_changed().unwrap_or(true) {
            return Err(InMemoryRequestStream::disconnected());
        }
        Ok(())
    }
}

#[async_trait]
impl Settle for InMemorySettle {
    async fn reply(&mut self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        self.broker.deliver_reply(reply_to, reply)
    }

    async fn ack(mut self: Box<Self>) -> Result<(), TransportError> {
        self.check_connected()?;
        self.envelope = None;
        Ok(())
    }

    async fn reject(mut self: Box<Self>, requeue: bool) -> Result<(), TransportError> {
        self.check_connected()?;
        if !requeue {
            self.envelope = None;
        }
        Ok(())
    }
}

impl Drop for InMemorySettle {
    fn drop(&mut self) {
        if let Some(envelope) = self.envelope.take() {
            self.queue.requeue(envelope);
        }
    }
}
