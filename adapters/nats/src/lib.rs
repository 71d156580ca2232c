//! fibrpc's NATS transport: implements both transport ports over NATS, in one of two modes
//! ([`NatsMode`]), with replies over core NATS in both.
//!
//! Core mode (the default) is core NATS request/reply, as NATS users do RPC: servers join the
//! queue group `q` on the queue's subject and on one subject per procedure, a request goes to
//! one of them or fails at once with "no responders" (`NoSuchQueue`), and each server answers
//! the NATS services API (`$SRV.PING|INFO|STATS`). Nothing is stored: settling is bookkeeping,
//! and a request whose server dies is lost. See `core_client`, `core_server` and `service`.
//!
//! JetStream mode stores requests, as follows.
//!
//! - A request queue is a JetStream stream (work-queue retention) capturing the subject
//!   `fibrpc.req.<queue>`, with one durable pull consumer shared by every server of the queue
//!   (competing consumers). JetStream gives what core NATS lacks for requests: explicit
//!   acknowledgement, redelivery of what a dead server held, and a limit on unacknowledged
//!   messages (`max_ack_pending`, set from the prefetch). That limit bounds the consumer as a
//!   whole, that is every server of the queue together, where AMQP's prefetch bounds each
//!   server; the first server to create the consumer sets it. Publishing to a queue no stream
//!   captures fails with `NoSuchQueue` at once ("no responders").
//! - Settling: `ack` is a JetStream ack (confirmed by the server), `reject(true)` a NAK
//!   (redelivered at once), `reject(false)` a TERM (never redelivered; a work-queue stream
//!   drops it). A request dropped unsettled is NAKed from `Drop`, so that it comes back at once
//!   rather than after the consumer's ack wait ([`NatsConfig::ack_wait`], after which the
//!   requests of a server killed outright come back). While held, a request is kept from the
//!   ack wait by progress acknowledgements, so that a slow handler's request does not go to a
//!   second server.
//! - A reply address is a core NATS inbox subscription; replies are published to it and
//!   flushed. Core NATS cannot tell whether anyone listens, so a reply to a vanished client is
//!   not reported as `NoSuchQueue`.
//! - Envelope fields travel in headers; the deadline as the milliseconds left when sent, less
//!   the time the request spent in the stream when it is taken. nats-server before 2.11 has no
//!   per-message TTL, so the request stream expires requests itself: one whose deadline has
//!   passed is terminated and skipped, never handed out.
//! - async-nats reconnects by itself, but core NATS replies sent while disconnected are lost:
//!   every disconnection ends open inboxes and request streams with `Disconnected`, so the
//!   protocol fails the calls in flight at once and opens a new inbox.
//!
//! The adapter translates and nothing more: no retries, no correlation, no codec. async-nats
//! errors become `TransportError`s in one module (`errors`). Depends on the ports, async-nats
//! and tokio only.

mod client;
mod core_client;
mod core_server;
mod errors;
mod headers;
mod mode;
mod names;
mod pull;
mod redact;
mod reply;
mod server;
mod service;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use async_trait::async_trait;
use fibrpc_ports::{QueueAdmin, TransportError};
use tokio::sync::watch;

/// `next`'s outcome, or `Disconnected` as soon as the connection is lost (checked first, so
/// that a busy source cannot hide a loss behind what it has).
pub(crate) async fn unless_disconnected<T>(
    disconnections: &mut watch::Receiver<u64>,
    next: impl std::future::Future<Output = Result<T, TransportError>>,
) -> Result<T, TransportError> {
    if disconnections.has_changed().unwrap_or(true) {
        return Err(errors::connection_lost());
    }
    tokio::select! {
        outcome = next => outcome,
        _ = disconnections.changed() => Err(errors::connection_lost()),
    }
}

pub use mode::NatsMode;
pub use names::{procedure_subject, stream_name, subject};
pub use redact::redact;

#[derive(Debug, Clone)]
pub struct NatsConfig {
    /// `nats://host:port`; credentials in the URL are not printed.
    pub url: String,
    /// How long `connect` waits for the server before it reports it unreachable.
    pub connect_timeout: Duration,
    /// JetStream's ack wait for the request consumers this connection creates: how long
    /// after a server dies without a word (killed: no NAK) its requests go to another. A
    /// live server holding a request keeps it however long it takes (it sends progress
    /// acknowledgements). An existing consumer keeps the ack wait it was created with.
    pub ack_wait: Duration,
    /// Core request/reply (the default) or JetStream. A `mode=core|jetstream` query in
    /// `url` (`nats://127.0.0.1:4222?mode=jetstream`) takes precedence.
    pub mode: NatsMode,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self {
            url: "nats://127.0.0.1:4222".to_owned(),
            connect_timeout: Duration::from_secs(5),
            ack_wait: Duration::from_secs(5),
            mode: NatsMode::Core,
        }
    }
}

/// A connection to NATS, usable as client and server transport at once. Cheap to clone:
/// clones share the connection.
#[derive(Clone)]
pub struct NatsTransport {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    /// Bumped at every disconnection; inboxes and streams watch it to end themselves.
    disconnections: watch::Receiver<u64>,
    ack_wait: Duration,
    mode: NatsMode,
    /// The procedures servers announced per queue (`announce_procedures`), for core mode's
    /// subjects and the services API.
    announced: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// Core mode's no-responders check, set up by the first request sent.
    responders: Arc<tokio::sync::OnceCell<core_client::Responders>>,
}

impl NatsTransport {
    /// Connects within `config.connect_timeout`, or fails with `Unreachable` naming the
    /// address (password redacted); `Refused` when the server turns the credentials away.
    pub async fn connect(config: NatsConfig) -> Result<Self, TransportError> {
        let (url, mode) = mode::from_url(&config.url, config.mode)?;
        let config = NatsConfig { url, ..config };
        let address = redact(&config.url);
        let (bump, disconnections) = watch::channel(0u64);
        let options = async_nats::ConnectOptions::new()
            .connection_timeout(config.connect_timeout)
            .event_callback(move |event| {
                let bump = bump.clone();
                async move {
                    // A reconnection is not enough: what was sent to our inboxes meanwhile is
                    // gone, so every loss must reach the protocol.
                    match event {
                        async_nats::Event::Disconnected => {
                            tracing::warn!("NATS connection lost; async-nats reconnects");
                            bump.send_modify(|count| *count += 1);
                        }
                        // Closed for good: on shutdown, the last handle dropped, as a rule.
                        async_nats::Event::Closed => {
                            tracing::debug!("NATS connection closed");
                            bump.send_modify(|count| *count += 1);
                        }
                        _ => {}
                    }
                }
            });
        // async-nats does not retry a first connection (retry_on_initial_connect is off), but
        // bound the whole of it anyway: a server that accepts and never answers must not hang.
        let connecting = async_nats::connect_with_options(config.url.as_str(), options);
        let client = tokio::time::timeout(config.connect_timeout, connecting)
            .await
            .map_err(|_| TransportError::unanswered(&address, config.connect_timeout))?
            .map_err(|error| errors::connect(&address, &config.url, &error))?;
        tracing::info!(%address, "connected to NATS");
        Ok(Self {
            jetstream: jetstream::new(client.clone()),
            client,
            disconnections,
            ack_wait: config.ack_wait,
            mode,
            announced: Arc::default(),
            responders: Arc::default(),
        })
    }

    /// Drops the connection and lets async-nats reconnect, as a network fault would: a fault
    /// hook for tests, behind the `test-hooks` feature. Open inboxes and request streams end
    /// with `Disconnected`.
    #[cfg(feature = "test-hooks")]
    pub async fn force_reconnect(&self) -> Result<(), TransportError> {
        self.client
            .force_reconnect()
            .await
            .map_err(|error| errors::reconnect(&error))
    }

    /// Records what a server hosts on `queue`, for core mode's subjects and services API.
    fn announce(&self, queue: &str, procedures: Vec<String>) {
        self.announced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(queue.to_owned(), procedures);
    }

    /// What was announced for `queue`: none if nothing was.
    fn announced(&self, queue: &str) -> Vec<String> {
        self.announced
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(queue)
            .cloned()
            .unwrap_or_default()
    }

    /// Whether this connection does core request/reply or JetStream.
    pub fn mode(&self) -> NatsMode {
        self.mode
    }
}

#[async_trait]
impl QueueAdmin for NatsTransport {
    /// Creates the stream of `queue`, so that requests can be sent before any server has
    /// started (servers create the consumer). Core mode has no queue to declare: a queue
    /// exists while a server subscribes to it.
    async fn declare_request_queue(&self, queue: &str) -> Result<(), TransportError> {
        if self.mode == NatsMode::Core {
            return Ok(());
        }
        server::declare_stream(&self.jetstream, queue)
            .await
            .map(|_| ())
    }

    /// Deletes the stream of `queue`, its consumer and what is in it (nothing in core mode).
    async fn delete_queue(&self, queue: &str) -> Result<(), TransportError> {
        if self.mode == NatsMode::Core {
            return Ok(());
        }
        self.jetstream
            .delete_stream(stream_name(queue))
            .await
            .map(|_| ())
            .map_err(|error| errors::delete_stream(queue, &error))
    }

    /// The requests `queue`'s stream holds: waiting, or handed out and not yet settled.
    async fn queue_depth(&self, queue: &str) -> Result<u64, TransportError> {
        // Core NATS keeps no requests: what no server takes at once is gone.
        if self.mode == NatsMode::Core {
            return Ok(0);
        }
        let stream = self
            .jetstream
            .get_stream(stream_name(queue))
            .await
            .map_err(|error| errors::get_stream(queue, &error))?;
        Ok(stream.cached_info().state.messages)
    }
}
