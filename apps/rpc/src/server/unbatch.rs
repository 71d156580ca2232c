//! A request batch: several calls in one message (docs/wire.md). Each call is admitted,
//! run, answered, traced and counted as a request of its own; the batch is acknowledged once
//! every reply is out, and left for redelivery (every call in it) if the connection is lost
//! first. A batch that cannot be read is set aside, as a request that cannot be read is.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use fibrpc_ports::{Envelope, IncomingRequest, TransportError};
use futures_util::future::OptionFuture;
use futures_util::stream::FuturesUnordered;
use futures_util::FutureExt;
use futures_util::StreamExt;
use tracing::Instrument;

use super::counted::Counted;
use super::pipeline::{after_send, reply_envelope, settle, Pipeline};
use super::ServerStats;
use crate::batch::frame;
use crate::metrics::ServerOutcome;

/// What answering a batch needs of its server.
pub(super) struct Batch {
    pub pipeline: Arc<Pipeline>,
    pub stats: Arc<ServerStats>,
    pub queue: String,
    pub messaging_system: &'static str,
    pub stream: u64,
    /// Each call in a span and trace of its own ([`ServerConfig::trace`](super::ServerConfig)).
    pub traced: bool,
}

/// A call of the batch, computed: its reply (None when it ends unanswered), how it ends if
/// that reply is delivered, and its count.
struct Done {
    reply: Option<Envelope>,
    outcome: ServerOutcome,
    counted: Counted,
}

/// Replies being sent, with the calls they answer; hands the batch's request back.
type Sending<'a> = Pin<
    Box<dyn Future<Output = (IncomingRequest, Result<(), TransportError>, Vec<Done>)> + Send + 'a>,
>;

/// A call computed: its reply joins those ready to go; one without a reply has ended.
fn collect(done: Done, ready: &mut Vec<Envelope>, answered: &mut Vec<Done>) {
    match done.reply {
        Some(reply) => {
            ready.push(reply);
            answered.push(Done {
                reply: None,
                ..done
            });
        }
        None => done.counted.finish(done.outcome),
    }
}

impl Batch {
    pub(super) async fn answer(self, request: IncomingRequest) {
        let mut items = match frame::decode(&request.envelope.body) {
            Ok(items) => items,
            Err(error) => {
                // Redelivering it would fail the same way (a poison loop): set aside,
                // dead-lettered where the broker is set up for it.
                tracing::warn!(%error, "a request batch that cannot be read: rejected");
                settle(request.reject(false).await);
                return;
            }
        };
        frame::item_deadlines(&mut items, request.envelope.deadline);
        let reply_to = request.envelope.reply_to.clone();
        let mut running: FuturesUnordered<_> = items
            .into_iter()
            .map(|item| {
                let mut envelope = item.envelope;
                envelope.reply_to.clone_from(&reply_to);
                self.call(envelope)
            })
            .collect();
        let reply_to = reply_to.unwrap_or_default();
        let mut held = Some(request);
        let mut ready: Vec<Envelope> = Vec::new();
        let mut answered: Vec<Done> = Vec::new();
        let mut sending: Option<Sending<'_>> = None;
        let mut lost = false;
        loop {
            // Replies go out as soon as the last send is done; those ready meanwhile, together.
            if sending.is_none() && !ready.is_empty() {
                if let Some(mut request) = held.take() {
                    let replies = std::mem::take(&mut ready);
                    let calls = std::mem::take(&mut answered);
                    let (pipeline, reply_to, stream) = (&self.pipeline, &reply_to, self.stream);
                    sending = Some(Box::pin(async move {
                        let sent = pipeline
                            .send_coalesced(stream, reply_to, &mut request, replies)
                            .await;
                        (request, sent, calls)
                    }));
                }
            }
            tokio::select! {
                Some(done) = running.next(), if !running.is_empty() => {
                    collect(done, &mut ready, &mut answered);
                    // Those done already go with it: no waiting, only what is there now.
                    while let Some(Some(done)) = running.next().now_or_never() {
                        collect(done, &mut ready, &mut answered);
                    }
                }
                Some((request, sent, calls)) = OptionFuture::from(sending.as_mut()), if sending.is_some() => {
                    sending = None;
                    held = Some(request);
                    if let Err(error) = &sent {
                        tracing::warn!(%error, calls = calls.len(), "replies of a batch not sent");
                    }
                    lost |= sent.as_ref().is_err_and(TransportError::is_disconnection);
                    for call in calls {
                        call.counted.finish(after_send(&sent, call.outcome));
                    }
                },
                else => break,
            }
        }
        match held {
            // Left unsettled: the broker delivers the whole batch again.
            Some(_) if lost => {}
            Some(request) => settle(request.ack().await),
            None => {}
        }
    }

    /// One call of the batch, from its own envelope: computed in its own span and trace.
    fn call(&self, mut envelope: Envelope) -> impl Future<Output = Done> + Send + '_ {
        let entry = self.pipeline.find(envelope.procedure.as_deref());
        let counted = Counted::start(
            &entry,
            &self.queue,
            || self.messaging_system,
            &envelope,
            self.stats.clone(),
            self.traced,
        );
        let span = counted.trace.span.clone();
        async move {
            let computed = counted
                .scope(self.pipeline.compute(&entry, &mut envelope))
                .await;
            match computed {
                Ok((_, answer)) => {
                    let (reply, outcome) = reply_envelope(envelope.correlation_id.take(), answer);
                    Done {
                        reply: Some(reply),
                        outcome,
                        counted,
                    }
                }
                Err(outcome) => Done {
                    reply: None,
                    outcome,
                    counted,
                },
            }
        }
        .instrument(span)
    }
}
