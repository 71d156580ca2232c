//! The client side: sending requests, and reply inboxes (a list each, read on a connection of
//! the inbox's own).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use fibrpc_ports::{Envelope, ReplyInbox, RequestTransport, TransportError};
use redis::aio::MultiplexedConnection;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::{errors, fields, names, Inner, RedisTransport};

/// How long one `BLMPOP` waits; the inbox's marker is refreshed between waits.
const WAIT: Duration = Duration::from_secs(5);
/// How much longer than `WAIT` a pop may take before the server counts as gone.
const MARGIN: Duration = Duration::from_secs(5);
/// The most replies one pop takes.
const BATCH: usize = 128;

#[async_trait]
impl RequestTransport for RedisTransport {
    fn messaging_system(&self) -> &'static str {
        "redis"
    }

    async fn open_reply_inbox(&self) -> Result<Box<dyn ReplyInbox>, TransportError> {
        let address = names::new_inbox();
        let marker = names::marker(&address);
        let connection = self.inner.connections.dedicated().await?;
        let mut open = redis::cmd("SET");
        open.arg(&marker)
            .arg(1)
            .arg("PX")
            .arg(names::inbox_ttl_ms());
        self.inner
            .connections
            .run::<()>(&open, "opening a reply inbox")
            .await?;
        // The list is there for replies from now on, whether or not the reader has started.
        let (sender, replies) = mpsc::unbounded_channel();
        let reader = tokio::spawn(receive(
            self.inner.clone(),
            connection,
            address.clone(),
            marker,
            sender,
        ));
        Ok(Box::new(RedisInbox {
            inner: self.inner.clone(),
            address,
            replies,
            reader,
            ended: false,
        }))
    }

    async fn send_request(&self, queue: &str, request: Envelope) -> Result<(), TransportError> {
        let mut command = redis::cmd("XADD");
        // NOMKSTREAM: a queue nobody declared is not created by a request, but reported.
        command
            .arg(names::stream_key(queue))
            .arg("NOMKSTREAM")
            .arg("*");
        for (name, value) in fields::to_pairs(&request) {
            command.arg(name).arg(value);
        }
        let id: Option<String> = self
            .inner
            .connections
            .run(&command, "sending a request")
            .await?;
        id.map(|_| ()).ok_or_else(|| TransportError::NoSuchQueue {
            queue: queue.to_owned(),
        })
    }
}

struct RedisInbox {
    inner: Arc<Inner>,
    address: String,
    replies: mpsc::UnboundedReceiver<Result<Envelope, TransportError>>,
    reader: JoinHandle<()>,
    ended: bool,
}

#[async_trait]
impl ReplyInbox for RedisInbox {
    fn address(&self) -> &str {
        &self.address
    }

    async fn next_reply(&mut self) -> Result<Envelope, TransportError> {
        if self.ended {
            return Err(errors::inbox_ended());
        }
        // A channel receive is cancel-safe: a dropped wait loses no reply.
        let reply = self
            .replies
            .recv()
            .await
            .unwrap_or_else(|| Err(errors::inbox_ended()));
        self.ended = reply.is_err();
        reply
    }
}

impl Drop for RedisInbox {
    fn drop(&mut self) {
        self.reader.abort();
        // Closed at once rather than at the marker's expiry: replies to it are refused.
        let (inner, address) = (self.inner.clone(), self.address.clone());
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let mut close = redis::cmd("DEL");
                close.arg(names::marker(&address)).arg(&address);
                if let Err(error) = inner
                    .connections
                    .run::<()>(&close, "closing an inbox")
                    .await
                {
                    tracing::debug!(%error, "closing a reply inbox");
                }
            });
        }
    }
}

/// Pops the replies pushed to `address` and passes them on, keeping the inbox's `marker`
/// alive, until the first error (passed on too) or the inbox is dropped.
async fn receive(
    inner: Arc<Inner>,
    mut connection: MultiplexedConnection,
    address: String,
    marker: String,
    replies: mpsc::UnboundedSender<Result<Envelope, TransportError>>,
) {
    let mut refreshed = Instant::now();
    loop {
        let mut pop = redis::cmd("BLMPOP");
        pop.arg(WAIT.as_secs())
            .arg(1)
            .arg(&address)
            .arg("RIGHT")
            .arg("COUNT")
            .arg(BATCH);
        let popped = tokio::time::timeout(
            WAIT + MARGIN,
            pop.query_async::<Option<(String, Vec<Vec<u8>>)>>(&mut connection),
        )
        .await;
        let popped = match popped {
            Ok(Ok(popped)) => popped,
            Ok(Err(error)) => {
                let _ = replies.send(Err(inner.connections.failed(&error, "reading replies")));
                return;
            }
            Err(_) => {
                let _ = replies.send(Err(errors::silent(WAIT + MARGIN)));
                return;
            }
        };
        for packed in popped.map(|(_, packed)| packed).unwrap_or_default() {
            let reply =
                fields::unpack(&packed).and_then(|pairs| fields::from_pairs(pairs, Duration::ZERO));
            match reply {
                Ok(reply) => {
                    if replies.send(Ok(reply)).is_err() {
                        return;
                    }
                }
                Err(reason) => tracing::warn!(%address, %reason, "malformed reply dropped"),
            }
        }
        if refreshed.elapsed() >= WAIT {
            // SET rather than PEXPIRE: should the marker have gone (a long stall, a server
            // restart without persistence), the inbox is open again.
            let mut refresh = redis::cmd("SET");
            refresh
                .arg(&marker)
                .arg(1)
                .arg("PX")
                .arg(names::inbox_ttl_ms());
            if let Err(error) = refresh.query_async::<()>(&mut connection).await {
                let _ = replies.send(Err(inner
                    .connections
                    .failed(&error, "keeping an inbox open")));
                return;
            }
            refreshed = Instant::now();
        }
    }
}
