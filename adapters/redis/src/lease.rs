//! Keeping a consumer's requests its own while it lives.
//!
//! Redis hands a pending entry to another consumer only when that one claims it, and claims
//! go by idle time (`XAUTOCLAIM` after `claim_after`). A consumer that lives therefore renews
//! what it holds, handed out or not, well within that time; when its stream is gone and every
//! request it handed out is settled, it leaves the group.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc_ports::TransportError;
use tokio::sync::Semaphore;

use crate::names::GROUP;
use crate::{errors, scripts, Inner};

/// The most entries one renewal touches; more than any prefetch a server asks for.
const MOST: u32 = 5_000;

/// Ends the renewals once the consumer is done, when dropped.
pub(crate) struct Lease {
    done: Arc<AtomicBool>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Release);
    }
}

/// Starts renewing what `consumer` holds in stream `key`, until the returned lease is dropped
/// and all of `slots` (`limit` of them) are free again: nothing handed out is unsettled.
pub(crate) fn start(
    inner: Arc<Inner>,
    key: String,
    consumer: String,
    slots: Arc<Semaphore>,
    limit: usize,
) -> Lease {
    let done = Arc::new(AtomicBool::new(false));
    let lease = Lease { done: done.clone() };
    let every = inner.claim_after / 4;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let finished = done.load(Ordering::Acquire) && slots.available_permits() >= limit;
            match renew(&inner, &key, &consumer, every / 2, finished).await {
                Renewal::Done if !finished => {}
                Renewal::Failed(error) if !finished => {
                    tracing::debug!(%error, %key, "renewing a consumer's requests");
                }
                // Finished, or the queue is gone and with it everything held.
                _ => return,
            }
        }
    });
    lease
}

enum Renewal {
    Done,
    QueueGone,
    Failed(TransportError),
}

async fn renew(
    inner: &Inner,
    key: &str,
    consumer: &str,
    idle: Duration,
    finished: bool,
) -> Renewal {
    let mut connection = match inner.connections.shared().await {
        Ok(connection) => connection,
        Err(error) => return Renewal::Failed(error),
    };
    let outcome = scripts::RENEW
        .key(key)
        .arg(GROUP)
        .arg(consumer)
        .arg(u64::try_from(idle.as_millis()).unwrap_or(u64::MAX))
        .arg(MOST)
        .arg(if finished { "1" } else { "0" })
        .invoke_async::<u64>(&mut connection)
        .await;
    match outcome {
        Ok(_) => Renewal::Done,
        Err(error) if errors::read(key, &error).is_some() => Renewal::QueueGone,
        Err(error) => Renewal::Failed(inner.connections.failed(&error, "renewing held requests")),
    }
}
