//! The server side: declaring queues, the request stream of one consumer, and replies.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use fibrpc_ports::{Envelope, IncomingRequest, ReplyTransport, RequestStream, TransportError};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use crate::fields::{self, REDELIVERED};
use crate::lease::{self, Lease};
use crate::names::{self, GROUP};
use crate::reader::{Clock, Raw, Reader};
use crate::settle::{Entry, RedisSettle};
use crate::{errors, Inner, RedisTransport};

/// Creates `queue`'s stream and group if missing. The group starts at the stream's beginning,
/// so requests sent before it existed are not skipped.
pub(crate) async fn declare(inner: &Inner, queue: &str) -> Result<(), TransportError> {
    let mut command = redis::cmd("XGROUP");
    command
        .arg("CREATE")
        .arg(names::stream_key(queue))
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM");
    let mut connection = inner.connections.shared().await?;
    match command.query_async::<()>(&mut connection).await {
        // BUSYGROUP: it exists already.
        Err(error) if error.code() == Some("BUSYGROUP") => Ok(()),
        outcome => inner
            .connections
            .check(outcome, "declaring a request queue"),
    }
}

#[async_trait]
impl ReplyTransport for RedisTransport {
    fn messaging_system(&self) -> &'static str {
        "redis"
    }

    async fn consume_requests(
        &self,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn RequestStream>, TransportError> {
        declare(&self.inner, queue).await?;
        let key = names::stream_key(queue);
        let consumer = names::new_consumer();
        // 0 is "no limit", as a broker's prefetch of 0 is.
        let limit = if prefetch == 0 {
            Semaphore::MAX_PERMITS
        } else {
            usize::from(prefetch)
        };
        let slots = Arc::new(Semaphore::new(limit));
        let clock = Clock::measure(&self.inner).await?;
        let reader = Reader::open(&self.inner, queue, &key, &consumer).await?;
        let lease = lease::start(
            self.inner.clone(),
            key.clone(),
            consumer.clone(),
            slots.clone(),
            limit,
        );
        Ok(Box::new(RedisRequestStream {
            inner: self.inner.clone(),
            key,
            consumer,
            slots,
            clock,
            reader: Some(reader),
            reading: None,
            buffer: VecDeque::new(),
            ended: None,
            _lease: lease,
        }))
    }
}

impl RedisTransport {
    /// Pushes `reply` to a reply address outside any request: for tools and tests. A server
    /// answers through the request instead ([`IncomingRequest::reply`]).
    ///
    /// # Errors
    /// `NoSuchQueue` when the inbox is gone; `Disconnected` when Redis is.
    pub async fn send_reply(&self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        crate::reply::send_reply(&self.inner, reply_to, reply).await
    }
}

/// The most entries one read asks for (a prefetch of 0, no limit, would ask for all).
const MOST_PER_READ: usize = 512;

/// One consumer of a queue. What it read and has not handed out is in `buffer`, and a read
/// under way is a task whose handle it keeps: a dropped `next_request` loses neither.
struct RedisRequestStream {
    inner: Arc<Inner>,
    key: String,
    consumer: String,
    /// One per request that may be unsettled (the prefetch); a handed-out request holds one.
    slots: Arc<Semaphore>,
    clock: Clock,
    /// None once cancelled or ended.
    reader: Option<Reader>,
    reading: Option<JoinHandle<Result<Vec<Raw>, TransportError>>>,
    buffer: VecDeque<Raw>,
    /// Why the stream ended, if it did.
    ended: Option<TransportError>,
    _lease: Lease,
}

impl RedisRequestStream {
    /// How many more may be read: free slots not spoken for by what is buffered.
    fn free(&self) -> usize {
        self.slots
            .available_permits()
            .saturating_sub(self.buffer.len())
    }

    /// The next entry read, reading if nothing is buffered.
    async fn next_raw(&mut self) -> Result<Raw, TransportError> {
        loop {
            if let Some(raw) = self.buffer.pop_front() {
                return Ok(raw);
            }
            if self.reading.is_none() {
                let free = self.free();
                if free == 0 {
                    // Wait for a request to be settled; the permit only tells it happened.
                    let _ = self.slots.acquire().await;
                    continue;
                }
                let reader = self.reader.as_mut().ok_or_else(errors::stream_ended)?;
                self.reading = Some(reader.read(free.min(MOST_PER_READ)));
            }
            let reading = self.reading.as_mut().ok_or_else(errors::reader_failed)?;
            let read = reading
                .await
                .unwrap_or_else(|_| Err(errors::reader_failed()));
            self.reading = None;
            self.buffer.extend(read?);
        }
    }

    fn entry(&self, id: String) -> Entry {
        Entry {
            inner: self.inner.clone(),
            key: self.key.clone(),
            consumer: self.consumer.clone(),
            id,
        }
    }

    /// Stops reading and puts back what was read and not handed out; the future returned
    /// puts back what a read under way brings, once it ends.
    fn stop(&mut self) -> impl Future<Output = ()> + Send + 'static {
        self.reader = None;
        let unread: Vec<Raw> = self.buffer.drain(..).collect();
        for raw in unread {
            self.entry(raw.id).put_back_later(raw.claimed);
        }
        let reading = self.reading.take();
        let template = self.entry(String::new());
        async move {
            let Some(reading) = reading else { return };
            if let Ok(Ok(read)) = reading.await {
                for raw in read {
                    template.with_id(raw.id).put_back_later(raw.claimed);
                }
            }
        }
    }
}

#[async_trait]
impl RequestStream for RedisRequestStream {
    async fn next_request(&mut self) -> Result<IncomingRequest, TransportError> {
        if let Some(error) = &self.ended {
            return Err(error.clone());
        }
        loop {
            let raw = match self.next_raw().await {
                Ok(raw) => raw,
                Err(error) => {
                    self.ended = Some(match error {
                        TransportError::Cancelled => TransportError::Cancelled,
                        _ => errors::stream_ended(),
                    });
                    return Err(error);
                }
            };
            let redelivered = raw.claimed || raw.fields.contains_key(REDELIVERED);
            let queued = self.clock.queued(&raw.id);
            let entry = self.entry(raw.id);
            let envelope = match fields::from_pairs(raw.fields, queued) {
                Ok(envelope) => envelope,
                Err(reason) => {
                    tracing::warn!(key = %self.key, id = %entry.id, %reason, "malformed request dropped");
                    entry.remove_later();
                    continue;
                }
            };
            if envelope.is_expired_at(Instant::now()) {
                // What a broker with per-message expiry would have done: nobody waits for it.
                tracing::debug!(id = %entry.id, "request past its deadline: dropped");
                entry.remove_later();
                continue;
            }
            let slot = self
                .slots
                .clone()
                .try_acquire_owned()
                .map_err(|_| errors::reader_failed())?;
            let settle = RedisSettle {
                inner: self.inner.clone(),
                entry: Some(entry),
                _slot: slot,
            };
            return Ok(IncomingRequest::new(
                envelope,
                redelivered,
                Box::new(settle),
            ));
        }
    }

    async fn cancel(&mut self) -> Result<(), TransportError> {
        self.ended = Some(TransportError::Cancelled);
        self.stop().await;
        Ok(())
    }
}

impl Drop for RedisRequestStream {
    fn drop(&mut self) {
        // As cancel, without waiting.
        fibrpc_ports::spawn_from_drop(self.stop());
    }
}
