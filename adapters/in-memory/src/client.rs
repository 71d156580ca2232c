use async_trait::async_trait;
use fibrpc_ports::{Envelope, ReplyInbox, RequestTransport, TransportError};
use tokio::sync::mpsc;

use crate::broker::{InMemoryBroker, InMemoryTransport};

#[async_trait]
impl RequestTransport for InMemoryTransport {
    // Not one of OpenTelemetry's names: no such broker exists outside this process.
    fn messaging_system(&self) -> &'static str {
        "in_memory"
    }

    async fn open_reply_inbox(&self) -> Result<Box<dyn ReplyInbox>, TransportError> {
        let address = format!("in-memory.reply.{}", uuid::Uuid::new_v4().simple());
        let replies = self.broker.open_reply_address(address.clone());
        Ok(Box::new(InMemoryReplyInbox {
            broker: self.broker.clone(),
            address,
            replies,
        }))
    }

    async fn send_request(&self, queue: &str, request: Envelope) -> Result<(), TransportError> {
        self.broker.request_queue(queue)?.push(request);
        Ok(())
    }
}

/// A private reply address; it is closed (replies to it fail with `NoSuchQueue`) when dropped,
/// like an exclusive auto-delete queue.
struct InMemoryReplyInbox {
    broker: InMemoryBroker,
    address: String,
    replies: mpsc::UnboundedReceiver<Envelope>,
}

#[async_trait]
impl ReplyInbox for InMemoryReplyInbox {
    fn address(&self) -> &str {
        &self.address
    }

    async fn next_reply(&mut self) -> Result<Envelope, TransportError> {
        self.replies
            .recv()
            .await
            .ok_or_else(|| TransportError::disconnected("in-memory broker connection lost"))
    }
}

impl Drop for InMemoryReplyInbox {
    fn drop(&mut self) {
        self.broker.close_reply_address(&self.address);
    }
}
