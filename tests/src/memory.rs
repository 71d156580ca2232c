use std::time::Duration;

use async_trait::async_trait;
use fibrpc_conformance::{Connection, Guarantee, TransportFactory};
use fibrpc_in_memory::InMemoryBroker;
use fibrpc_ports::TransportError;

/// The in-memory broker under test: a fresh broker per factory.
#[derive(Default)]
pub struct MemoryFactory {
    broker: InMemoryBroker,
}

#[async_trait]
impl TransportFactory for MemoryFactory {
    async fn connect(&self) -> Result<Connection, TransportError> {
        Ok(Connection::new(self.broker.connect()))
    }

    async fn declare_queue(&self, name: &str) -> Result<(), TransportError> {
        self.broker.declare_queue(name);
        Ok(())
    }

    async fn delete_queue(&self, name: &str) {
        self.broker.delete_queue(name);
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
