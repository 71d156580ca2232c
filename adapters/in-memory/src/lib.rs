//! An in-process message broker implementing fibrpc's transport ports on tokio primitives.
//!
//! It keeps the contract of a real broker, so tests that pass over it say something about the
//! protocol: named request queues shared by competing consumers, a prefetch limit,
//! acknowledgement with redelivery of requests whose consumer went away unsettled, deadlines
//! that expire queued requests, one private reply address per client, and disconnection
//! reported as such ([`InMemoryBroker::disconnect_all`]).
//!
//! ```text
//!   InMemoryTransport ──send_request──▶ RequestQueue ──next_request──▶ InMemoryTransport
//!     (client side)   ◀──next_reply──── reply address ◀─────reply───── (server side)
//! ```

mod admin;
mod broker;
mod client;
mod lock;
mod queue;
mod server;

pub use broker::{InMemoryBroker, InMemoryTransport};
