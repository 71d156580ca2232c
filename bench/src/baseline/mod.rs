//! The bare request/reply baselines, one per broker that has one, and what the bench needs to
//! know of each transport besides fibrpc's connection: the bench's own registration.
//!
//! A baseline is written as a user who knows the broker's client would write it by hand, with
//! none of fibrpc's guarantees: docs/performance.md says what each measures.

pub mod amqp;
pub mod nats;

use std::sync::Arc;

use async_trait::async_trait;
use fibrpc_app::{BrokerUrls, Transport};
use fibrpc_ports::TransportError;

use crate::discover::BrokerName;

/// A running bare echo server.
#[async_trait]
pub trait BareEcho: Send {
    /// Replies sent so far.
    fn echoed(&self) -> u64;
    /// Resolves when the server stops by itself (connection lost).
    async fn ended(&mut self);
    async fn stop(self: Box<Self>);
}

/// A bare client: the reply must be the request's body.
#[async_trait]
pub trait BareCall: Send + Sync {
    async fn call(&self, body: &[u8]) -> Result<Vec<u8>, TransportError>;
}

/// The broker's addresses and how its process is recognised, for the CPU accounting; None
/// when there is no broker process.
pub(crate) fn broker_process(
    transport: &Transport,
    urls: &BrokerUrls,
) -> Option<(String, BrokerName)> {
    let url = urls.url(transport);
    match transport.name {
        "amqp" => {
            // A cluster's list may name later nodes by host:port alone: full URLs first.
            let nodes = amqp::nodes(&url).map_or(url, |nodes| nodes.join(","));
            let ports = &[("amqp", 5672), ("amqps", 5671)];
            // Erlang's `beam.smp` running `rabbit`.
            Some((nodes, BrokerName::new("beam.smp", Some("rabbit"), ports)))
        }
        "nats" => {
            let ports = &[("nats", 4222), ("tls", 4222)];
            Some((url, BrokerName::new("nats-server", None, ports)))
        }
        "redis" => Some((
            url,
            BrokerName::new("redis-server", None, &[("redis", 6379)]),
        )),
        _ => None,
    }
}

/// What the bare baseline is, for the bench's labels.
pub(crate) fn label(transport: &Transport) -> &'static str {
    match transport.name {
        "amqp" => "baseline (bare lapin)",
        "nats" => "baseline (bare async-nats)",
        _ => "baseline (none)",
    }
}

/// Whether the bare echo's queue is declared (as fibrpc's, same kind and arguments) before
/// the echo servers use it, and deleted afterwards.
pub(crate) fn declares_its_queue(transport: &Transport) -> bool {
    transport.name == "amqp"
}

/// Starts the bare echo server on `queue`.
pub(crate) async fn start_echo(
    transport: &Transport,
    urls: &BrokerUrls,
    queue: &str,
    prefetch: u16,
) -> Result<Box<dyn BareEcho>, String> {
    let url = urls.url(transport);
    let started: Result<Box<dyn BareEcho>, TransportError> = match transport.name {
        "amqp" => amqp::BareEcho::start(&url, queue, prefetch)
            .await
            .map(|echo| Box::new(echo) as _),
        "nats" => nats::BareNatsEcho::start(&url, queue)
            .await
            .map(|echo| Box::new(echo) as _),
        _ => return Err(no_baseline(transport)),
    };
    started.map_err(|error| format!("bare {} echo: {error}", transport.name))
}

/// Connects a bare client of `queue`.
pub(crate) async fn connect_client(
    transport: &Transport,
    urls: &BrokerUrls,
    queue: &str,
    max_in_flight: usize,
) -> Result<Arc<dyn BareCall>, String> {
    let url = urls.url(transport);
    let connected: Result<Arc<dyn BareCall>, TransportError> = match transport.name {
        "amqp" => amqp::BareClient::connect(&url, queue, max_in_flight)
            .await
            .map(|client| Arc::new(client) as _),
        "nats" => nats::BareNatsClient::connect(&url, queue)
            .await
            .map(|client| Arc::new(client) as _),
        _ => return Err(no_baseline(transport)),
    };
    connected.map_err(|error| format!("bare client: {error}"))
}

fn no_baseline(transport: &Transport) -> String {
    format!("--transport {} has no bare baseline", transport.name)
}
