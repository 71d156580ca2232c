//! Settling one delivered request: acknowledged (and deleted), or put back.

use std::sync::Arc;

use async_trait::async_trait;
use fibrpc_ports::{Envelope, Settle, TransportError};
use tokio::sync::OwnedSemaphorePermit;

use crate::names::GROUP;
use crate::{scripts, Inner};

/// One entry pending on one consumer. Its prefetch slot is freed once it is settled; dropped
/// unsettled, it is put back at once, marked redelivered.
pub(crate) struct RedisSettle {
    /// Where the reply goes out.
    pub(crate) inner: Arc<Inner>,
    pub(crate) entry: Option<Entry>,
    pub(crate) _slot: OwnedSemaphorePermit,
}

/// Where a pending entry is.
pub(crate) struct Entry {
    pub(crate) inner: Arc<Inner>,
    pub(crate) key: String,
    pub(crate) consumer: String,
    pub(crate) id: String,
}

impl Entry {
    /// Another entry of the same stream and consumer.
    pub(crate) fn with_id(&self, id: String) -> Entry {
        Entry {
            inner: self.inner.clone(),
            key: self.key.clone(),
            consumer: self.consumer.clone(),
            id,
        }
    }

    /// Acknowledges and deletes the entry: done with, and not kept in the stream.
    pub(crate) async fn remove(&self) -> Result<(), TransportError> {
        let mut connection = self.inner.connections.shared().await?;
        let outcome = redis::pipe()
            .atomic()
            .cmd("XACK")
            .arg(&self.key)
            .arg(GROUP)
            .arg(&self.id)
            .ignore()
            .cmd("XDEL")
            .arg(&self.key)
            .arg(&self.id)
            .ignore()
            .query_async::<()>(&mut connection)
            .await;
        self.inner
            .connections
            .check(outcome, "acknowledging a request")
    }

    /// Puts the entry back at the end of the stream, if this consumer still owns it; marked
    /// redelivered when `redelivered`.
    pub(crate) async fn put_back(&self, redelivered: bool) -> Result<(), TransportError> {
        let mut connection = self.inner.connections.shared().await?;
        let outcome = scripts::REQUEUE
            .key(&self.key)
            .arg(GROUP)
            .arg(&self.consumer)
            .arg(&self.id)
            .arg(if redelivered { "1" } else { "0" })
            .invoke_async::<u8>(&mut connection)
            .await;
        self.inner
            .connections
            .check(outcome, "putting a request back")
            .map(|_| ())
    }

    /// [`remove`](Self::remove) in a task of its own, for what must not wait for it (a
    /// malformed or expired entry met in a cancellable `next_request`).
    pub(crate) fn remove_later(self) {
        // Without a runtime (a drop at shutdown) the entry comes back after `claim_after`.
        fibrpc_ports::spawn_from_drop(async move {
            if let Err(error) = self.remove().await {
                tracing::warn!(%error, id = %self.id, "cannot remove a request");
            }
        });
    }

    /// [`put_back`](Self::put_back) in a task of its own.
    pub(crate) fn put_back_later(self, redelivered: bool) {
        // Without a runtime (a drop at shutdown) the entry comes back after `claim_after`.
        fibrpc_ports::spawn_from_drop(async move {
            if let Err(error) = self.put_back(redelivered).await {
                // It comes back after `claim_after`, once its renewals have stopped.
                tracing::warn!(%error, id = %self.id, "cannot put a request back");
            }
        });
    }
}

#[async_trait]
impl Settle for RedisSettle {
    async fn reply(&mut self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        crate::reply::send_reply(&self.inner, reply_to, reply).await
    }

    async fn ack(mut self: Box<Self>) -> Result<(), TransportError> {
        match self.entry.take() {
            Some(entry) => entry.remove().await,
            None => Ok(()),
        }
    }

    async fn reject(mut self: Box<Self>, requeue: bool) -> Result<(), TransportError> {
        match self.entry.take() {
            Some(entry) if requeue => entry.put_back(true).await,
            Some(entry) => entry.remove().await,
            None => Ok(()),
        }
    }
}

impl Drop for RedisSettle {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.take() {
            entry.put_back_later(true);
        }
    }
}
