//! The client's reply loop: reads the reply inbox, hands each reply to its caller, and when
//! the inbox is lost opens it again with the replies sent meanwhile (where the transport can:
//! the calls that named it go on waiting), else fails the calls that named it and opens a new
//! one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fibrpc_ports::{ReplyInbox, RequestTransport};
use tokio::sync::watch;

use super::pending::PendingCalls;
use crate::batch::Replies;
use crate::metrics::Metrics;
use crate::Backoff;

/// The reply address calls should name now, tagged with how many addresses came before it.
#[derive(Debug, Clone)]
pub(crate) struct ReplyAddress {
    pub address: Arc<str>,
    pub generation: u64,
    /// It outlives a lost connection ([`ReplyInbox::resumable`]).
    pub resumable: bool,
}

impl ReplyAddress {
    pub(crate) fn of(inbox: &dyn ReplyInbox, generation: u64) -> Self {
        Self {
            address: inbox.address().into(),
            generation,
            resumable: inbox.resumable(),
        }
    }
}

pub(crate) async fn run(
    transport: Arc<dyn RequestTransport>,
    mut inbox: Box<dyn ReplyInbox>,
    pending: Arc<PendingCalls>,
    current: watch::Sender<Option<ReplyAddress>>,
    reconnect: Backoff,
    metrics: Option<Metrics>,
    resumed: Arc<AtomicU64>,
) {
    let reconnects = metrics.as_ref().map(|metrics| metrics.reconnects("client"));
    let mut generation = 0;
    loop {
        let lost = loop {
            match inbox.next_reply().await {
                Ok(message) => {
                    for reply in Replies::of(message) {
                        let matched = pending.complete(reply);
                        if let (false, Some(metrics)) = (matched, &metrics) {
                            metrics.reply_dropped();
                        }
                    }
                }
                Err(error) => break error,
            }
        };
        if inbox.resumable() {
            let address = inbox.address().to_owned();
            drop(inbox);
            tracing::warn!(%lost, %address, "reply address lost; resuming it");
            if let Some(resumed_inbox) = resume(transport.as_ref(), &address, reconnect).await {
                inbox = resumed_inbox;
                resumed.fetch_add(1, Ordering::Relaxed);
                if let Some(reconnects) = &reconnects {
                    reconnects.inc();
                }
                tracing::info!(%address, "reply address resumed; calls in flight go on waiting");
                continue;
            }
            // Gone for good: fail the calls that named it, as for any other address.
            inbox = reopen(transport.as_ref(), reconnect).await;
            fail_and_replace(&pending, &current, &mut generation, &lost, inbox.as_ref());
            if let Some(reconnects) = &reconnects {
                reconnects.inc();
            }
            continue;
        }
        current.send_replace(None);
        let failed = pending.fail_generation(generation, &lost);
        tracing::warn!(%lost, failed_calls = failed, "reply address lost; reopening");
        drop(inbox);
        inbox = reopen(transport.as_ref(), reconnect).await;
        generation += 1;
        if let Some(reconnects) = &reconnects {
            reconnects.inc();
        }
        tracing::info!(address = inbox.address(), "reply address reopened");
        current.send_replace(Some(ReplyAddress::of(inbox.as_ref(), generation)));
    }
}

/// Fails the calls of the current generation and names the new inbox for calls to come.
fn fail_and_replace(
    pending: &PendingCalls,
    current: &watch::Sender<Option<ReplyAddress>>,
    generation: &mut u64,
    lost: &fibrpc_ports::TransportError,
    inbox: &dyn ReplyInbox,
) {
    let failed = pending.fail_generation(*generation, lost);
    tracing::warn!(%lost, failed_calls = failed, "reply address gone; a new one opened");
    *generation += 1;
    current.send_replace(Some(ReplyAddress::of(inbox, *generation)));
}

/// The inbox at `address` again, or None when the transport says it cannot be resumed. Tries
/// until one of those: calls in flight meanwhile end at their own deadlines.
async fn resume(
    transport: &dyn RequestTransport,
    address: &str,
    reconnect: Backoff,
) -> Option<Box<dyn ReplyInbox>> {
    let mut attempt = 0;
    loop {
        match transport.resume_reply_inbox(address).await {
            Ok(inbox) => return inbox,
            Err(error) => {
                let delay = reconnect.delay(attempt);
                tracing::warn!(%error, retry_in = ?delay, "cannot resume the reply address yet");
                tokio::time::sleep(delay).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}

/// Tries until it succeeds: the loop ends only when the client is dropped (the task aborted).
async fn reopen(transport: &dyn RequestTransport, reconnect: Backoff) -> Box<dyn ReplyInbox> {
    let mut attempt = 0;
    loop {
        match transport.open_reply_inbox().await {
            Ok(inbox) => return inbox,
            Err(error) => {
                let delay = reconnect.delay(attempt);
                tracing::warn!(%error, retry_in = ?delay, "cannot open a reply address");
                tokio::time::sleep(delay).await;
                attempt = attempt.saturating_add(1);
            }
        }
    }
}
