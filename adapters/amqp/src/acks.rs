//! The acknowledgements of one consumer channel, sent together where they can be.
//!
//! An ack of delivery tag T with `multiple` settles every delivery up to T that the channel
//! has not settled yet: one frame, and one round of work for the broker, instead of one per
//! request. Requests finish out of order, so a batch may use `multiple` only below the lowest
//! delivery still out (handed to the protocol and not yet settled); acks above it go one by
//! one. One task per channel writes the batches: acks that come in while it writes one go in
//! the next, and each caller is woken once, when its own ack is written.
//!
//! A reject or nack is written alone, and its delivery counts as out until it is written, so
//! that no `multiple` ack can cover a request meant to be rejected.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use fibrpc_ports::TransportError;
use futures_util::future::try_join_all;
use lapin::options::BasicAckOptions;
use lapin::Channel;
use tokio::sync::{oneshot, Notify};

use crate::errors::translate;

type Written = oneshot::Sender<Result<(), TransportError>>;

pub(crate) struct Acks {
    shared: Arc<Shared>,
}

struct Shared {
    channel: Arc<Channel>,
    state: Mutex<State>,
    /// Wakes the writer when an ack is queued, or when the last handle goes.
    queued: Notify,
}

#[derive(Default)]
struct State {
    /// Delivery tags handed out and neither settled nor queued for an ack.
    out: BTreeSet<u64>,
    /// Acks for the next batch, each with its caller to tell.
    queued: Vec<(u64, Written)>,
    /// No handle is left: the writer finishes what is queued and ends.
    closed: bool,
}

impl Acks {
    /// Starts the channel's ack writer (a task on the current runtime).
    pub(crate) fn new(channel: Arc<Channel>) -> Self {
        let shared = Arc::new(Shared {
            channel,
            state: Mutex::default(),
            queued: Notify::new(),
        });
        tokio::spawn(write_batches(shared.clone()));
        Self { shared }
    }

    pub(crate) fn channel(&self) -> &Arc<Channel> {
        &self.shared.channel
    }

    /// Records a delivery handed to the protocol.
    pub(crate) fn delivered(&self, tag: u64) {
        self.shared.lock().out.insert(tag);
    }

    /// Records a delivery settled some other way (reject, nack) once that is written.
    pub(crate) fn settled_alone(&self, tag: u64) {
        self.shared.lock().out.remove(&tag);
    }

    /// Acknowledges `tag`; returns once the frame that does it is written.
    ///
    /// # Errors
    /// `Disconnected` when the channel is gone: the broker delivers the request again.
    pub(crate) async fn ack(&self, tag: u64) -> Result<(), TransportError> {
        let (written, outcome) = oneshot::channel();
        {
            let mut state = self.shared.lock();
            state.out.remove(&tag);
            state.queued.push((tag, written));
        }
        self.shared.queued.notify_one();
        outcome.await.unwrap_or_else(|_| {
            Err(TransportError::disconnected(
                "the channel's ack writer stopped",
            ))
        })
    }
}

impl Drop for Acks {
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.queued.notify_one();
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update keeps the state consistent before any call that could panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Writes batches of acks until the last handle to the channel's acks is gone.
async fn write_batches(shared: Arc<Shared>) {
    loop {
        let (batch, frames, closed) = {
            let mut state = shared.lock();
            let batch = std::mem::take(&mut state.queued);
            let frames = frames_for(&state.out, batch.iter().map(|(tag, _)| *tag));
            (batch, frames, state.closed)
        };
        if !batch.is_empty() {
            let acks = frames
                .into_iter()
                .map(|(tag, multiple)| shared.channel.basic_ack(tag, BasicAckOptions { multiple }));
            let outcome = try_join_all(acks).await.map(drop).map_err(|error| {
                TransportError::disconnected(format!(
                    "acknowledging on a lost channel: {}",
                    translate(&error, "")
                ))
            });
            for (_, written) in batch {
                // The caller may have stopped waiting; the ack is written all the same.
                let _ = written.send(outcome.clone());
            }
            continue;
        }
        if closed {
            return;
        }
        shared.queued.notified().await;
    }
}

/// The frames that acknowledge `batch`: one `multiple` ack for the tags below the lowest
/// delivery still `out`, single acks for the others.
fn frames_for(out: &BTreeSet<u64>, batch: impl Iterator<Item = u64>) -> Vec<(u64, bool)> {
    let lowest_out = out.first().copied().unwrap_or(u64::MAX);
    let mut tags: Vec<u64> = batch.collect();
    tags.sort_unstable();
    let below = tags.partition_point(|&tag| tag < lowest_out);
    let mut frames = Vec::with_capacity(1 + tags.len() - below);
    if below > 0 {
        frames.push((tags[below - 1], below > 1));
    }
    frames.extend(tags[below..].iter().map(|&tag| (tag, false)));
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(out: &[u64], batch: &[u64]) -> Vec<(u64, bool)> {
        frames_for(&out.iter().copied().collect(), batch.iter().copied())
    }

    #[test]
    fn a_batch_below_every_delivery_still_out_is_one_multiple_ack() {
        assert_eq!(frames(&[9], &[3, 1, 2]), vec![(3, true)]);
        assert_eq!(frames(&[], &[4, 5]), vec![(5, true)]);
    }

    #[test]
    fn acks_above_a_delivery_still_out_go_alone() {
        // 3 is still being handled: a multiple ack of 4 or 5 would settle it too.
        assert_eq!(
            frames(&[3], &[5, 1, 4, 2]),
            vec![(2, true), (4, false), (5, false)]
        );
        assert_eq!(frames(&[1], &[2]), vec![(2, false)]);
    }

    #[test]
    fn a_single_ack_does_not_claim_multiple() {
        assert_eq!(frames(&[], &[7]), vec![(7, false)]);
        assert!(frames(&[], &[]).is_empty());
    }
}
