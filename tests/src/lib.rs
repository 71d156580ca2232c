//! Factories that plug each adapter into the conformance kit, shared by the workspace tests;
//! the local RabbitMQ cluster and throughput figures for the cluster tests; a procedure whose
//! handler a test holds.

mod amqp;
pub mod cluster;
pub mod failures;
mod held;
mod memory;
mod nats;
mod redis;
pub mod throughput;

pub use amqp::AmqpFactory;
pub use held::{Held, Never};
pub use memory::MemoryFactory;
pub use nats::NatsFactory;
pub use redis::RedisFactory;
