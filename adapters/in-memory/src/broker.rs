use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fibrpc_ports::{Envelope, TransportError};
use tokio::sync::{mpsc, watch};

use crate::lock::lock;
use crate::queue::RequestQueue;

/// An in-process broker. Cloning it gives another handle to the same broker.
#[derive(Clone, Default)]
pub struct InMemoryBroker {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    request_queues: Mutex<HashMap<String, Arc<RequestQueue>>>,
    reply_addresses: Mutex<HashMap<String, mpsc::UnboundedSender<Envelope>>>,
    /// Bumped by every simulated connection loss; consumers watch it to end their streams.
    connection_epoch: watch::Sender<u64>,
}

impl InMemoryBroker {
    pub fn new() -> Self {
        Self::default()
    }

    /// A connection to this broker, usable as client and server transport at once.
    pub fn connect(&self) -> InMemoryTransport {
        InMemoryTransport {
            broker: self.clone(),
        }
    }

    /// Creates the request queue `name` if it does not exist (servers do this when they start
    /// consuming; a test may want the queue before any server is there).
    pub fn declare_queue(&self, name: &str) -> Arc<RequestQueue> {
        lock(&self.shared.request_queues)
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(RequestQueue::default()))
            .clone()
    }

    pub fn delete_queue(&self, name: &str) -> bool {
        lock(&self.shared.request_queues).remove(name).is_some()
    }

    /// Requests waiting in `queue`, not yet handed to a consumer (None: no such queue).
    pub fn queue_depth(&self, queue: &str) -> Option<usize> {
        lock(&self.shared.request_queues)
            .get(queue)
            .map(|queue| queue.len())
    }

    /// Number of reply addresses currently open.
    pub fn reply_address_count(&self) -> usize {
        lock(&self.shared.reply_addresses).len()
    }

    /// Simulates the loss of every connection: open reply inboxes and request streams end
    /// with `Disconnected`, and requests handed out but not yet settled go back to their
    /// queues as they are settled or dropped. Transports can be used again afterwards, as
    /// after a reconnection.
    pub fn disconnect_all(&self) {
        lock(&self.shared.reply_addresses).clear();
        self.shared
            .connection_epoch
            .send_modify(|epoch| *epoch += 1);
    }

    pub(crate) fn request_queue(&self, name: &str) -> Result<Arc<RequestQueue>, TransportError> {
        lock(&self.shared.request_queues)
            .get(name)
            .cloned()
            .ok_or_else(|| TransportError::NoSuchQueue {
                queue: name.to_owned(),
            })
    }

    pub(crate) fn open_reply_address(&self, address: String) -> mpsc::UnboundedReceiver<Envelope> {
        let (sender, receiver) = mpsc::unbounded_channel();
        lock(&self.shared.reply_addresses).insert(address, sender);
        receiver
    }

    pub(crate) fn close_reply_address(&self, address: &str) {
        lock(&self.shared.reply_addresses).remove(address);
    }

    pub(crate) fn deliver_reply(
        &self,
        address: &str,
        reply: Envelope,
    ) -> Result<(), TransportError> {
        let no_such_queue = || TransportError::NoSuchQueue {
            queue: address.to_owned(),
        };
        let addresses = lock(&self.shared.reply_addresses);
        let sender = addresses.get(address).ok_or_else(no_such_queue)?;
        sender.send(reply).map_err(|_| no_such_queue())
    }

    pub(crate) fn watch_connection(&self) -> watch::Receiver<u64> {
        self.shared.connection_epoch.subscribe()
    }
}

/// One connection to an [`InMemoryBroker`]; implements both transport ports.
#[derive(Clone)]
pub struct InMemoryTransport {
    pub(crate) broker: InMemoryBroker,
}

impl InMemoryTransport {
    pub fn broker(&self) -> &InMemoryBroker {
        &self.broker
    }
}
