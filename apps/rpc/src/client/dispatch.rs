//! The client's reply loop: reads the reply inbox, hands each reply to its caller, and when
//! the inbox is lost fails the calls that named it, then opens a new one.

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
}

pub(crate) async fn run(
    transport: Arc<dyn RequestTransport>,
    mut inbox: Box<dyn ReplyInbox>,
    pending: Arc<PendingCalls>,
    current: watch::Sender<Option<ReplyAddress>>,
    reconnect: Backoff,
    metrics: Option<Metrics>,
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
        current.send_replace(Some(ReplyAddress {
            address: inbox.address().into(),
            generation,
        }));
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
