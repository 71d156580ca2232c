//! What fibrpc's test suites share, written once: unique queue names, bounded waits, a server
//! running in a task of its own, resident memory from /proc, skipping (or, in CI, failing)
//! when a broker is missing, and severing RabbitMQ connections by their connection name.
//!
//! Used by the conformance kit, the workspace tests and the adapters' own tests. Knows no
//! adapter crate; [`rabbitmq`] drives `rabbitmqctl`, the broker's command line.

mod broker;
mod memory;
mod names;
pub mod rabbitmq;
mod server;
mod wait;

pub use broker::{in_ci, skip_or_fail};
pub use memory::{own_resident_kib, resident_kib};
pub use names::{unique, unique_queue};
pub use server::RunningServer;
pub use wait::{eventually, within};
