//! Reading one consumer's requests from its stream, on a connection of its own: what other
//! consumers left idle too long (`XAUTOCLAIM`), then new entries (`XREADGROUP`, blocking).
//! Each read runs in a task, so that what it brings survives a dropped `next_request`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fibrpc_ports::TransportError;
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{RedisError, Value};
use tokio::task::JoinHandle;

use crate::names::GROUP;
use crate::{errors, Inner};

/// How much longer than its own `BLOCK` a read may take before the server counts as gone.
const MARGIN: Duration = Duration::from_secs(5);

/// One entry as read: its id, its fields, and whether it was taken over from another consumer.
pub(crate) struct Raw {
    pub(crate) id: String,
    pub(crate) fields: HashMap<String, Vec<u8>>,
    pub(crate) claimed: bool,
}

pub(crate) struct Reader {
    inner: Arc<Inner>,
    connection: MultiplexedConnection,
    queue: String,
    key: String,
    consumer: String,
    /// When the last look for requests other consumers left idle was.
    last_claim: Option<Instant>,
}

impl Reader {
    pub(crate) async fn open(
        inner: &Arc<Inner>,
        queue: &str,
        key: &str,
        consumer: &str,
    ) -> Result<Self, TransportError> {
        Ok(Self {
            connection: inner.connections.dedicated().await?,
            inner: inner.clone(),
            queue: queue.to_owned(),
            key: key.to_owned(),
            consumer: consumer.to_owned(),
            last_claim: None,
        })
    }

    /// Starts reading at most `count` entries. Looks for abandoned ones at the start and then
    /// every half `claim_after`; blocks for new ones for at most a quarter of it.
    pub(crate) fn read(&mut self, count: usize) -> JoinHandle<Result<Vec<Raw>, TransportError>> {
        let claim_after = self.inner.claim_after;
        let claim = self
            .last_claim
            .is_none_or(|last| last.elapsed() >= claim_after / 2);
        if claim {
            self.last_claim = Some(Instant::now());
        }
        let block = claim_after / 4;
        let mut read = Read {
            connection: self.connection.clone(),
            key: self.key.clone(),
            consumer: self.consumer.clone(),
            count,
        };
        let (inner, queue) = (self.inner.clone(), self.queue.clone());
        tokio::spawn(async move {
            let reading = read.run(claim.then_some(claim_after), block);
            match tokio::time::timeout(block + MARGIN, reading).await {
                Ok(Ok(entries)) => Ok(entries),
                Ok(Err(error)) => Err(errors::read(&queue, &error)
                    .unwrap_or_else(|| inner.connections.failed(&error, "reading requests"))),
                Err(_) => Err(errors::silent(block + MARGIN)),
            }
        })
    }
}

struct Read {
    connection: MultiplexedConnection,
    key: String,
    consumer: String,
    count: usize,
}

impl Read {
    async fn run(
        &mut self,
        claim_idle: Option<Duration>,
        block: Duration,
    ) -> Result<Vec<Raw>, RedisError> {
        let mut entries = Vec::new();
        if let Some(idle) = claim_idle {
            let claimed: StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&self.key)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(millis(idle))
                .arg("0-0")
                .arg("COUNT")
                .arg(self.count)
                .query_async(&mut self.connection)
                .await?;
            entries.extend(claimed.claimed.into_iter().map(|id| raw(id, true)));
        }
        let left = self.count.saturating_sub(entries.len());
        if left == 0 {
            return Ok(entries);
        }
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(GROUP)
            .arg(&self.consumer)
            .arg("COUNT")
            .arg(left);
        // Block only with nothing in hand: what was claimed is handed out at once.
        if entries.is_empty() {
            command.arg("BLOCK").arg(millis(block).max(1));
        }
        let read: Option<StreamReadReply> = command
            .arg("STREAMS")
            .arg(&self.key)
            .arg(">")
            .query_async(&mut self.connection)
            .await?;
        let new = read.into_iter().flat_map(|read| read.keys);
        entries.extend(new.flat_map(|key| key.ids).map(|id| raw(id, false)));
        Ok(entries)
    }
}

fn raw(entry: StreamId, claimed: bool) -> Raw {
    // A value that is not a string cannot come from XADD; left out, the entry is malformed.
    let fields = entry
        .map
        .into_iter()
        .filter_map(|(name, value)| bytes(value).map(|value| (name, value)))
        .collect();
    Raw {
        id: entry.id,
        fields,
        claimed,
    }
}

fn bytes(value: Value) -> Option<Vec<u8>> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.into_bytes()),
        _ => None,
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// The Redis server's clock against this host's, to tell how long an entry was queued: its
/// id is the server's time, in milliseconds, when it was added.
pub(crate) struct Clock {
    /// Server time less local time, in milliseconds.
    offset_ms: i64,
}

impl Clock {
    /// Asks the server for its time (`TIME`); the error is half a round trip.
    pub(crate) async fn measure(inner: &Inner) -> Result<Self, TransportError> {
        let (seconds, micros): (i64, i64) = inner
            .connections
            .run(&redis::cmd("TIME"), "reading the server's clock")
            .await?;
        let server_ms = seconds * 1_000 + micros / 1_000;
        Ok(Self {
            offset_ms: server_ms - local_ms(),
        })
    }

    /// How long the entry `id` has been in the stream (zero if the clocks say otherwise).
    pub(crate) fn queued(&self, id: &str) -> Duration {
        let added_ms = id
            .split_once('-')
            .and_then(|(ms, _)| ms.parse::<i64>().ok());
        let Some(added_ms) = added_ms else {
            return Duration::ZERO;
        };
        let waited = local_ms() + self.offset_ms - added_ms;
        Duration::from_millis(u64::try_from(waited).unwrap_or(0))
    }
}

fn local_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_queued_comes_from_the_entry_id() {
        let clock = Clock { offset_ms: 0 };
        let id = format!("{}-0", local_ms() - 1_500);
        let queued = clock.queued(&id);
        assert!(queued >= Duration::from_millis(1_500), "{queued:?}");
        assert!(queued < Duration::from_millis(3_000), "{queued:?}");
        assert_eq!(clock.queued("not-an-id"), Duration::ZERO);
        let future = format!("{}-0", local_ms() + 60_000);
        assert_eq!(clock.queued(&future), Duration::ZERO);
    }
}
