use std::time::Duration;

use async_trait::async_trait;
use fibrpc_conformance::{Connection, Guarantee, TransportFactory};
use fibrpc_in_memory::{InMemoryBroker, InMemoryTransport};
use fibrpc_ports::{QueueAdmin, TransportError};

/// The in-memory broker under test: a fresh broker per factory.
pub struct MemoryFactory {
    broker: InMemoryBroker,
    /// Declares and deletes queues for the tests.
    admin: InMemoryTransport,
}

impl Default for MemoryFactory {
    fn default() -> Self {
        let broker = InMemoryBroker::new();
        let admin = broker.connect();
        Self { broker, admin }
    }
}

#[async_trait]
impl TransportFactory for MemoryFactory {
    async fn connect(&self) -> Result<Connection, TransportError> {
        Ok(Connection::new(self.broker.connect()))
    }

    fn admin(&self) -> &dyn QueueAdmin {
        &self.admin
    }

    async fn sever_connections(&self) -> bool {
        self.broker.disconnect_all();
        true
    }

    /// Nothing is redelivered by a timer: a request dropped unsettled goes back at once.
    fn redelivery_timeout(&self) -> Duration {
        Duration::ZERO
    }

    fn lacks(&self, guarantee: Guarantee) -> Option<&'static str> {
        match guarantee {
            Guarantee::RedeliveryAfterProcessDeath => Some(
                "the in-memory broker lives in the test process: another process cannot reach                  it, and it dies with the consumer's process",
            ),
            _ => None,
        }
    }
}
