//! Coalesced requests (opt-in, [`BatchLimits`]): calls waiting to be sent go out together,
//! as one batch message (docs/wire.md), whenever a send slot is free. No timer: a call that
//! finds a slot free goes out at once, alone; only calls that arrive while every slot is
//! busy wait, and then go together.

use std::sync::Arc;

use fibrpc_ports::{Envelope, RequestTransport, TransportError};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::batch::frame::{self, BATCH_CONTENT_TYPE};

/// How many calls a request batch carries at most, and how many batches are sent at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// Calls per message at most.
    pub max_calls: usize,
    /// Bytes per message at most (the items' framing included); a call larger than this
    /// goes alone.
    pub max_bytes: usize,
    /// Messages being sent at once (each waits for the broker's word that it took it): with
    /// one, the client sends at most one message per round trip to the broker.
    pub sends_in_flight: usize,
}

impl Default for BatchLimits {
    fn default() -> Self {
        Self {
            max_calls: 32,
            max_bytes: 256 * 1024,
            sends_in_flight: 4,
        }
    }
}

impl BatchLimits {
    /// At most `max_calls` calls per message, the other bounds as by default.
    pub fn calls(max_calls: usize) -> Self {
        Self {
            max_calls,
            ..Self::default()
        }
    }
}

/// A call waiting to be sent, and where to say how sending went.
struct Queued {
    request: Envelope,
    sent: oneshot::Sender<Result<(), TransportError>>,
}

/// The client's sender of coalesced requests: a task of its own, ended with the client.
pub(crate) struct Batcher {
    queue: mpsc::UnboundedSender<Queued>,
    task: JoinHandle<()>,
}

impl Drop for Batcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Batcher {
    pub(crate) fn start(
        transport: Arc<dyn RequestTransport>,
        queue: String,
        limits: BatchLimits,
    ) -> Self {
        let (sender, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(transport, queue, limits, receiver));
        Self {
            queue: sender,
            task,
        }
    }

    /// Sends `request`, alone or with others; returns once the broker took the message
    /// carrying it (as [`RequestTransport::send_request`] does), or could not.
    pub(crate) async fn send(&self, request: Envelope) -> Result<(), TransportError> {
        let (sent, outcome) = oneshot::channel();
        self.queue
            .send(Queued { request, sent })
            .map_err(|_| TransportError::disconnected("client closed"))?;
        outcome
            .await
            .map_err(|_| TransportError::disconnected("the request sender ended"))?
    }
}

async fn run(
    transport: Arc<dyn RequestTransport>,
    queue: String,
    limits: BatchLimits,
    mut waiting: mpsc::UnboundedReceiver<Queued>,
) {
    let mut sending = FuturesUnordered::new();
    // A call taken that did not fit the last batch: the first of the next.
    let mut next: Option<Queued> = None;
    loop {
        let first = tokio::select! {
            biased;
            Some(()) = sending.next(), if !sending.is_empty() => continue,
            first = async {
                match next.take() {
                    Some(first) => Some(first),
                    None => waiting.recv().await,
                }
            }, if sending.len() < limits.sends_in_flight.max(1) => first,
        };
        let Some(first) = first else { break };
        let batch = gather(first, &mut waiting, &mut next, limits);
        sending.push(send(transport.as_ref(), &queue, batch));
    }
    while sending.next().await.is_some() {}
}

/// `first` and the calls waiting behind it, within the limits, all for one reply address;
/// the first that does not fit is put in `next`.
fn gather(
    first: Queued,
    waiting: &mut mpsc::UnboundedReceiver<Queued>,
    next: &mut Option<Queued>,
    limits: BatchLimits,
) -> Vec<Queued> {
    let mut bytes = frame::item_size(&first.request);
    let mut batch = vec![first];
    while batch.len() < limits.max_calls {
        let Ok(queued) = waiting.try_recv() else {
            break;
        };
        // A caller that gave up meanwhile is not sent.
        if queued.sent.is_closed() {
            continue;
        }
        let size = frame::item_size(&queued.request);
        if bytes + size > limits.max_bytes || queued.request.reply_to != batch[0].request.reply_to {
            *next = Some(queued);
            break;
        }
        bytes += size;
        batch.push(queued);
    }
    batch
}

/// Sends `batch` as one message (a lone call as itself) and tells each call how it went.
async fn send(transport: &dyn RequestTransport, queue: &str, mut batch: Vec<Queued>) {
    if batch.len() == 1 {
        if let Some(Queued { request, sent }) = batch.pop() {
            let _ = sent.send(transport.send_request(queue, request).await);
        }
        return;
    }
    let message = Envelope {
        reply_to: batch[0].request.reply_to.clone(),
        content_type: Some(BATCH_CONTENT_TYPE.to_owned()),
        // The broker expires the message as a whole: at the last of its calls' deadlines.
        deadline: batch
            .iter()
            .filter_map(|queued| queued.request.deadline)
            .max(),
        body: frame::encode(batch.iter().map(|queued| &queued.request)),
        reads_batches: true,
        ..Envelope::default()
    };
    let outcome = transport.send_request(queue, message).await;
    for queued in batch {
        let _ = queued.sent.send(outcome.clone());
    }
}
