//! One connection to a broker, as the protocol and the tools use it: both ports and the
//! administration of request queues, behind one value.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{ReplyTransport, RequestTransport, TransportError};

/// Declares, measures and deletes request queues: what a server does when it starts, and
/// what tests, benchmarks and operators do around it. Every adapter's connection implements
/// it.
#[async_trait]
pub trait QueueAdmin: Send + Sync {
    /// Makes sure the request queue `queue` exists, as a server does when it starts
    /// consuming: an existing queue is left as it is.
    async fn declare_request_queue(&self, queue: &str) -> Result<(), TransportError>;

    /// Deletes the queue `queue` and what is in it.
    async fn delete_queue(&self, queue: &str) -> Result<(), TransportError>;

    /// The requests `queue` holds: those waiting MUST be counted; whether those handed out
    /// and not yet settled are is the broker's (RabbitMQ and the in-memory broker do not count
    /// them, JetStream and Redis Streams do). `NoSuchQueue` if it does not exist, where the
    /// broker can tell.
    async fn queue_depth(&self, queue: &str) -> Result<u64, TransportError>;
}

/// A connected transport, usable as both ports and as its queues' administrator. Cloning it
/// shares the same connection.
#[derive(Clone)]
pub struct Connection {
    pub requests: Arc<dyn RequestTransport>,
    pub replies: Arc<dyn ReplyTransport>,
    pub admin: Arc<dyn QueueAdmin>,
}

impl Connection {
    pub fn new<T: RequestTransport + ReplyTransport + QueueAdmin + 'static>(transport: T) -> Self {
        let transport = Arc::new(transport);
        Self {
            requests: transport.clone(),
            replies: transport.clone(),
            admin: transport,
        }
    }
}
