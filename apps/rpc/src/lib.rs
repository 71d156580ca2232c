//! The fibrpc RPC protocol, written once over the transport ports and run unchanged over
//! every adapter.
//!
//! - [`RpcClient`]: one reply address per client, any number of calls in flight on it, a
//!   fresh correlation id and a deadline per call, replies routed by correlation id, calls
//!   failed promptly when the connection is lost, backpressure past a bound on calls in flight.
//! - [`RpcServer`]: takes requests with bounded concurrency, answers each with a reply (an
//!   error reply for bad input) and only then acknowledges it; graceful shutdown.
//! - [`Codec`]: the wire formats, chosen per message by content type: bincode (our default)
//!   and the RabbitMQ tutorial's decimal text.
//!
//! Depends on the domain and the ports only; it knows no broker.

mod backoff;
pub mod client;
pub mod codec;
mod error;
pub mod server;

pub use backoff::Backoff;
pub use client::{ClientConfig, ClientStats, RetryPolicy, RpcClient};
pub use codec::Codec;
pub use error::{CallError, ServerError};
pub use server::{RpcServer, ServerConfig, ServerHandle, ServerStats};
