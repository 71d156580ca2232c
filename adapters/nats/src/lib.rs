//! fibrpc's NATS transport: implements both transport ports over NATS, requests through
//! JetStream and replies over core NATS.
//!
//! - A request queue is a JetStream stream (work-queue retention) capturing the subject
//!   `fibrpc.req.<queue>`, with one durable pull consumer shared by every server of the queue
//!   (competing consumers). JetStream gives what core NATS lacks for requests: explicit
//!   acknowledgement, redelivery of what a dead server held, and a limit on unacknowledged
//!   messages (`max_ack_pending`, set from the prefetch; it bounds the consumer as a whole, not
//!   each server as AMQP's prefetch does). Publishing to a queue no stream captures fails with
//!   `NoSuchQueue` at once ("no responders").
//! - A reply address is a core NATS inbox subscription; replies are published to it and
//!   flushed. Core NATS cannot tell whether anyone listens, so a reply to a vanished client is
//!   not reported as `NoSuchQueue`.
//! - Envelope fields travel in headers; the deadline as the milliseconds left when sent, and
//!   a request whose deadline has passed is acknowledged and skipped rather than handed out.
//! - async-nats reconnects by itself, but core NATS replies sent while disconnected are lost:
//!   every disconnection ends open inboxes and request streams with `Disconnected`, so the
//!   protocol fails the calls in flight at once and opens a new inbox.
//!
//! Depends on the ports, async-nats and tokio only.

mod client;
mod headers;
mod names;
mod server;

use std::time::Duration;

use async_nats::jetstream;
use fibrpc_ports::TransportError;
use tokio::sync::watch;

pub use names::{stream_name, subject};

#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://host:port`; credentials in the URL are not printed.
    pub url: String,
    pub connect_timeout: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            connect_timeout: Duration::from_secs(5),
        }
    }
}

/// A connection to NATS, usable as client and server transport at once. Cheap to clone.
#[derive(Clone)]
pub struct NatsTransport {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// Bumped at every disconnection; inboxes and streams watch it to end themselves.
    disconnections: watch::Receiver<u64>,
}

impl NatsTransport {
    pub async fn connect(config: NatsConfig) -> Result<Self, TransportError> {
        let address = redact(&config.url);
        let (bump, disconnections) = watch::channel(0u64);
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(config.connect_timeout)
            .event_callback(move |event| {
                let bump = bump.clone();
                async move {
                    if matches!(event, async_nats::Event::Disconnected) {
                        tracing::warn!("disconnected from NATS");
                        bump.send_modify(|count| *count += 1);
                    }
                }
            });
        let connecting = async_nats::connect_with_options(config.url.as_str(), options);
        let client = tokio::time::timeout(config.connect_timeout, connecting)
            .await
            .map_err(|_| TransportError::Unreachable {
                address: address.clone(),
                reason: format!("no answer within {:?}", config.connect_timeout),
            })?
            .map_err(|error| TransportError::Unreachable {
                address: address.clone(),
                reason: scrub(&error.to_string(), &config.url),
            })?;
        tracing::info!(%address, "connected to NATS");
        Ok(Self {
            jetstream: jetstream::new(client.clone()),
            client,
            disconnections,
        })
    }

    /// Creates the stream of `queue`, so that requests can be sent before any server has
    /// started (servers create the consumer).
    pub async fn declare_request_queue(&self, queue: &str) -> Result<(), TransportError> {
        server::declare_stream(&self.jetstream, queue)
            .await
            .map(|_| ())
    }

    /// Deletes the stream of `queue` and what is in it.
    pub async fn delete_queue(&self, queue: &str) -> Result<(), TransportError> {
        self.jetstream
            .delete_stream(stream_name(queue))
            .await
            .map(|_| ())
            .map_err(|error| TransportError::Refused {
                reason: error.to_string(),
            })
    }

    /// Drops the connection and lets async-nats reconnect, as a network fault would (for
    /// tests and operators).
    pub async fn force_reconnect(&self) -> Result<(), TransportError> {
        self.client
            .force_reconnect()
            .await
            .map_err(|error| TransportError::disconnected(error.to_string()))
    }
}

/// The URL with its password, or token, replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((credentials, host)) = rest.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => format!("{scheme}://***@{host}"),
    }
}

fn scrub(text: &str, url: &str) -> String {
    let secret = url
        .split_once("://")
        .and_then(|(_, rest)| rest.rsplit_once('@'))
        .map(|(credentials, _)| {
            credentials
                .split_once(':')
                .map_or(credentials, |(_, password)| password)
        });
    match secret {
        Some(secret) if !secret.is_empty() => text.replace(secret, "***"),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_hidden() {
        assert_eq!(redact("nats://u:secret@h:4222"), "nats://u:***@h:4222");
        assert_eq!(redact("nats://token@h:4222"), "nats://***@h:4222");
        assert_eq!(redact("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
        assert_eq!(
            scrub("bad secret here", "nats://u:secret@h"),
            "bad *** here"
        );
    }
}
