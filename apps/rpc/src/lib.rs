//! The fibrpc RPC protocol, written once over the transport ports and run unchanged over
//! every adapter, for any procedure.
//!
//! - [`Procedure`]: a name, request, response and error types (serde types); they travel in
//!   bincode or JSON. A procedure whose values need a wire of their own is an [`Endpoint`]
//!   with its [`Wire`].
//! - [`RpcClient`]: `client.call::<P>(request)`; one reply address per client, any number of
//!   calls in flight on it, a fresh correlation id and a deadline per call, replies routed by
//!   correlation id, calls failed promptly when the connection is lost, backpressure past a
//!   bound on calls in flight.
//! - [`RpcServer`]: serves a [`Service`] (handlers registered per procedure, sharing its
//!   state), dispatching by the procedure a request names; bounded concurrency, an error
//!   reply for bad input or an unknown procedure, acknowledgement only after the reply;
//!   graceful shutdown.
//! - [`codec`]: the wire formats, open and keyed by content type: bincode (our default) and
//!   JSON here, others beside the procedures that speak them.
//!
//! - [`metrics`]: Prometheus counters of requests and calls, by procedure and outcome, counted
//!   here once for every adapter; [`Readiness`] follows whether a server consumes; [`trace`]
//!   carries a W3C trace context from the caller to the server.
//!
//! Depends on the ports only (and serde, bincode, serde_json, prometheus-client for the
//! metrics' types); it knows no broker, no HTTP and no procedure of its own.

mod backoff;
pub mod batch;
pub mod client;
pub mod codec;
pub mod discovery;
mod error;
pub mod metrics;
mod procedure;
pub mod server;
#[cfg(test)]
mod testing;
pub mod trace;

pub use backoff::Backoff;
pub use client::{BatchLimits, ClientConfig, ClientStats, RetryPolicy, RpcClient};
pub use codec::Codec;
pub use discovery::{ProcedureInfo, Procedures};
pub use error::{CallError, Fault, ServerError, TimedOut, Unanswered};
/// The port traits and types a program that builds clients and servers names.
pub use fibrpc_ports::{Envelope, ReplyError, ReplyTransport, RequestTransport, TransportError};
pub use metrics::Metrics;
pub use procedure::{Endpoint, Procedure, Serde, Wire};
pub use server::{
    Expired, Limits, Readiness, RpcServer, ServerConfig, ServerHandle, ServerState, ServerStats,
    Service,
};
pub use trace::TraceContext;
