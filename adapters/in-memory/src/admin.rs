use async_trait::async_trait;
use fibrpc_ports::{QueueAdmin, TransportError};

use crate::broker::InMemoryTransport;

#[async_trait]
impl QueueAdmin for InMemoryTransport {
    async fn declare_request_queue(&self, queue: &str) -> Result<(), TransportError> {
        self.broker.declare_queue(queue);
        Ok(())
    }

    async fn delete_queue(&self, queue: &str) -> Result<(), TransportError> {
        self.broker.delete_queue(queue);
        Ok(())
    }

    async fn queue_depth(&self, queue: &str) -> Result<u64, TransportError> {
        let depth = self
            .broker
            .queue_depth(queue)
            .ok_or_else(|| TransportError::NoSuchQueue {
                queue: queue.to_owned(),
            })?;
        Ok(u64::try_from(depth).unwrap_or(u64::MAX))
    }
}
