//! The ports of fibrpc: the two traits through which the RPC protocol talks to a message
//! broker, and the plain types that cross them.
//!
//! The client side sends requests and reads replies through a [`RequestTransport`]; the server
//! side takes requests through a [`ReplyTransport`] and answers each through its own handle. An adapter (RabbitMQ,
//! in-memory, ...) implements both by translating these types to its broker's, and nothing
//! more: correlation, deadlines, codecs and retries belong to the protocol, written once above
//! the ports. Each trait's documentation states, with MUST, what an adapter guarantees; the
//! workspace tests check those sentences for every adapter.
//!
//! This crate knows no broker. Its one tie to tokio is [`spawn_from_drop`], for the `Drop`
//! of a settle handle that must tell the broker something without awaiting.

mod client;
mod connection;
mod drop;
mod envelope;
mod error;
mod flow;
pub mod redact;
mod server;

pub use client::{ReplyInbox, RequestTransport};
pub use connection::{Connection, QueueAdmin};
pub use drop::spawn_from_drop;
pub use envelope::{Envelope, ReplyError};
pub use error::TransportError;
pub use flow::{Flow, FlowWatch, Stall};
pub use server::{IncomingRequest, ReplyTransport, RequestStream, Settle};

#[cfg(feature = "mock")]
pub use client::{MockReplyInbox, MockRequestTransport};
#[cfg(feature = "mock")]
pub use server::{MockReplyTransport, MockRequestStream, MockSettle};
