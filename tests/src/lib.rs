//! Factories that plug each adapter into the conformance kit, shared by the workspace tests.

mod amqp;
mod memory;
mod nats;

pub use amqp::AmqpFactory;
pub use memory::MemoryFactory;
pub use nats::NatsFactory;
