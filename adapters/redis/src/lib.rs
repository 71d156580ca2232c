//! fibrpc's Redis transport: implements both transport ports over Redis 7, requests through
//! Redis Streams and replies through lists.
//!
//! - A request queue is a stream `fibrpc:queue:<queue>` with one consumer group shared by every
//!   server (competing consumers). `send_request` is `XADD ... NOMKSTREAM`, so a request to a
//!   queue nobody declared fails with `NoSuchQueue` at once.
//! - A server reads with `XREADGROUP`, asking for no more than its free prefetch slots; what it
//!   read but has not handed out stays in a buffer the stream owns, so that a dropped
//!   `next_request` future (the protocol polls it in a `select!`) loses nothing.
//! - Redis cannot tell that a consumer died: a request stays pending on it. Every consumer
//!   renews what it holds (`XCLAIM ... JUSTID`) well within `claim_after`, and takes over what
//!   another has left idle longer (`XAUTOCLAIM`): a live consumer keeps its requests however
//!   long it works on them, a dead one's come back after `claim_after`.
//! - Settling: `ack` and `reject(false)` are `XACK` + `XDEL`; `reject(true)` and a request
//!   dropped unsettled go back by a script that re-adds the entry, marked redelivered, and
//!   acknowledges the old one (only if this consumer still owns it).
//! - A reply address is a list read with `BLMPOP` on a connection of the inbox's own, beside a
//!   marker key whose expiry the inbox keeps pushing back. `send_reply` pushes only while the
//!   marker exists (a script), so a reply to a vanished inbox is `NoSuchQueue`.
//! - The deadline travels as the milliseconds left when sent; the consumer takes off the time
//!   the entry spent in the stream (its id is the Redis clock at `XADD`), and drops a request
//!   past its deadline instead of handing it out.
//! - Redis errors become `TransportError`s in one module (`errors`). A lost connection ends
//!   inboxes and streams with `Disconnected`; the transport opens a new connection for the
//!   next command.
//!
//! Depends on the ports, the `redis` crate and tokio only.

mod client;
mod connection;
mod errors;
mod fields;
mod lease;
mod names;
mod reader;
mod redact;
mod reply;
mod scripts;
mod server;
mod settle;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fibrpc_ports::{QueueAdmin, TransportError};

pub use names::stream_key;
pub use redact::redact;

use crate::connection::Connections;

#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port[/db]`; a password in it is never printed.
    pub url: String,
    /// How long `connect` (and every reconnection) waits for the server.
    pub connect_timeout: Duration,
    /// How long a command waits for its answer on the shared connection.
    pub response_timeout: Duration,
    /// How long a request may sit unrenewed in a consumer before another consumer takes it
    /// over: how soon the requests of a server killed without a word come back. A live server
    /// renews its requests well within it, however long it works on them.
    pub claim_after: Duration,
    /// The name every connection gives itself (`CLIENT SETNAME`; no spaces), so that operators
    /// (and tests) can find them in `CLIENT LIST`.
    pub client_name: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".to_owned(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(5),
            claim_after: Duration::from_secs(5),
            client_name: "fibrpc".to_owned(),
        }
    }
}

/// A connection to Redis, usable as client and server transport at once. Cheap to clone:
/// clones share the connection.
#[derive(Clone)]
pub struct RedisTransport {
    inner: Arc<Inner>,
}

/// What clones share.
pub(crate) struct Inner {
    pub(crate) connections: Connections,
    pub(crate) claim_after: Duration,
}

impl RedisTransport {
    /// Connects within `config.connect_timeout`, or fails with `Unreachable` naming the
    /// address (password redacted); `Refused` when the server turns the credentials away or
    /// the URL or name is unusable.
    pub async fn connect(config: RedisConfig) -> Result<Self, TransportError> {
        let connections = Connections::new(&config)?;
        connections.shared().await?;
        tracing::info!(address = %redact(&config.url), "connected to Redis");
        Ok(Self {
            inner: Arc::new(Inner {
                connections,
                claim_after: config.claim_after,
            }),
        })
    }

    /// Closes, with `CLIENT KILL`, every connection to the server named `client_name`
    /// (`RedisConfig::client_name`), as a network fault would (a fault hook for tests, behind
    /// the `test-hooks` feature); returns how many. Inboxes and request streams on them end
    /// with `Disconnected`, and their transports open new connections for the commands that
    /// follow.
    #[cfg(feature = "test-hooks")]
    pub async fn kill_clients_named(&self, client_name: &str) -> Result<usize, TransportError> {
        let listing: String = self
            .inner
            .connections
            .run(
                &redis::cmd("CLIENT").arg("LIST").clone(),
                "listing connections",
            )
            .await?;
        let ids: Vec<&str> = listing
            .lines()
            .filter(|line| {
                line.split(' ')
                    .any(|field| field == format!("name={client_name}"))
            })
            .filter_map(|line| line.split(' ').find_map(|field| field.strip_prefix("id=")))
            .collect();
        for id in &ids {
            let mut kill = redis::cmd("CLIENT");
            kill.arg("KILL").arg("ID").arg(*id);
            // 0 when it went away meanwhile: nothing to do.
            self.inner
                .connections
                .run::<u32>(&kill, "closing a connection")
                .await?;
        }
        Ok(ids.len())
    }
}

#[async_trait]
impl QueueAdmin for RedisTransport {
    /// Creates the stream of `queue` and its consumer group, if missing, so that requests can
    /// be sent before any server has started.
    async fn declare_request_queue(&self, queue: &str) -> Result<(), TransportError> {
        server::declare(&self.inner, queue).await
    }

    /// Deletes the stream of `queue`, with its group and what is in it. Consumers reading it
    /// end with `Disconnected`.
    async fn delete_queue(&self, queue: &str) -> Result<(), TransportError> {
        let mut command = redis::cmd("DEL");
        command.arg(stream_key(queue));
        self.inner
            .connections
            .run::<()>(&command, "deleting a request queue")
            .await
    }

    /// The requests `queue`'s stream holds: waiting, or handed out and not yet settled.
    async fn queue_depth(&self, queue: &str) -> Result<u64, TransportError> {
        let mut command = redis::cmd("XLEN");
        command.arg(stream_key(queue));
        self.inner
            .connections
            .run(&command, "reading a queue's length")
            .await
    }
}
