//! The acknowledgements of one consumer channel, sent together where they can be.
//!
//! An ack of delivery tag T with `multiple` settles every delivery up to T that the channel
//! has not settled yet: one frame, and one round of work for the broker, instead of one per
//! request. Requests finish out of order, so a batch may use `multiple` only below the lowest
//! delivery still out (handed to the protocol and not yet settled); acks above it go one by
//! one. Batches form by themselves: while one is being written, the acks that come in wait for
//! it and go in the next, written by one of their own callers.
//!
//! A reject or nack is written alone, and its delivery counts as out until it is written, so
//! that no `multiple` ack can cover a request meant to be rejected.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use fibrpc_ports::TransportError;
use futures_util::future::try_join_all;
use lapin::options::BasicAckOptions;
use lapin::Channel;
use tokio::sync::watch;

use crate::errors::translate;

pub(crate) struct Acks {
    channel: Arc<Channel>,
    state: Mutex<State>,
    /// How many batches have been written (or failed); callers wait on it for theirs.
    written: watch::Sender<u64>,
}

#[derive(Default)]
struct State {
    /// Delivery tags handed out and neither settled nor queued for an ack.
    out: BTreeSet<u64>,
    /// Tags whose ack goes in the next batch.
    queued: Vec<u64>,
    /// Batches taken so far; the next batch is `taken + 1`.
    taken: u64,
    /// A caller is writing a batch now.
    writing: bool,
    /// The first batch whose write failed: the channel is gone, and so is every later batch.
    failed_from: Option<(u64, TransportError)>,
}

impl Acks {
    pub(crate) fn new(channel: Arc<Channel>) -> Self {
        Self {
            channel,
            state: Mutex::default(),
            written: watch::Sender::new(0),
        }
    }

    pub(crate) fn channel(&self) -> &Arc<Channel> {
        &self.channel
    }

    /// Records a delivery handed to the protocol.
    pub(crate) fn delivered(&self, tag: u64) {
        self.lock().out.insert(tag);
    }

    /// Records a delivery settled some other way (reject, nack) once that is written.
    pub(crate) fn settled_alone(&self, tag: u64) {
        self.lock().out.remove(&tag);
    }

    /// Acknowledges `tag`; returns once the frame that does it is written.
    ///
    /// # Errors
    /// `Disconnected` when the channel is gone: the broker delivers the request again.
    pub(crate) async fn ack(self: &Arc<Self>, tag: u64) -> Result<(), TransportError> {
        let mut written = self.written.subscribe();
        let batch = {
            let mut state = self.lock();
            state.out.remove(&tag);
            state.queued.push(tag);
            state.taken + 1
        };
        loop {
            let frames = {
                let mut state = self.lock();
                if let Some(outcome) = state.outcome_of(batch, *written.borrow_and_update()) {
                    return outcome;
                }
                if state.writing {
                    None
                } else {
                    state.writing = true;
                    state.taken += 1;
                    Some((state.taken, state.take_frames()))
                }
            };
            match frames {
                Some((number, frames)) => self.write(number, frames).await,
                None => {
                    // The writer announces every batch it finishes; the sender lives in self.
                    let _ = written.changed().await;
                }
            }
        }
    }

    async fn write(&self, number: u64, frames: Vec<(u64, bool)>) {
        let acks = frames
            .into_iter()
            .map(|(tag, multiple)| self.channel.basic_ack(tag, BasicAckOptions { multiple }));
        let outcome = try_join_all(acks).await;
        let mut state = self.lock();
        if let Err(error) = outcome {
            state
                .failed_from
                .get_or_insert((number, translate(&error, "")));
        }
        state.writing = false;
        drop(state);
        self.written.send_replace(number);
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update keeps the state consistent before any call that could panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// The outcome of batch `batch` once `written` batches are done, or None while it waits.
    fn outcome_of(&self, batch: u64, written: u64) -> Option<Result<(), TransportError>> {
        match &self.failed_from {
            Some((failed, error)) if batch >= *failed && (written >= batch || !self.writing) => {
                Some(Err(TransportError::disconnected(format!(
                    "acknowledging on a lost channel: {error}"
                ))))
            }
            _ if written >= batch => Some(Ok(())),
            _ => None,
        }
    }

    /// The frames of the next batch: one `multiple` ack for the queued tags below the lowest
    /// delivery still out, single acks for the others.
    fn take_frames(&mut self) -> Vec<(u64, bool)> {
        let lowest_out = self.out.first().copied().unwrap_or(u64::MAX);
        let mut queued = std::mem::take(&mut self.queued);
        queued.sort_unstable();
        let below = queued.partition_point(|&tag| tag < lowest_out);
        let mut frames = Vec::with_capacity(1 + queued.len() - below);
        if below > 0 {
            frames.push((queued[below - 1], below > 1));
        }
        frames.extend(queued[below..].iter().map(|&tag| (tag, false)));
        frames
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(out: &[u64], queued: &[u64]) -> State {
        State {
            out: out.iter().copied().collect(),
            queued: queued.to_vec(),
            ..State::default()
        }
    }

    #[test]
    fn a_batch_below_every_delivery_still_out_is_one_multiple_ack() {
        assert_eq!(state(&[9], &[3, 1, 2]).take_frames(), vec![(3, true)]);
        assert_eq!(state(&[], &[4, 5]).take_frames(), vec![(5, true)]);
    }

    #[test]
    fn acks_above_a_delivery_still_out_go_alone() {
        // 3 is still being handled: a multiple ack of 4 or 5 would settle it too.
        assert_eq!(
            state(&[3], &[5, 1, 4, 2]).take_frames(),
            vec![(2, true), (4, false), (5, false)]
        );
        assert_eq!(state(&[1], &[2]).take_frames(), vec![(2, false)]);
    }

    #[test]
    fn a_single_ack_does_not_claim_multiple() {
        assert_eq!(state(&[], &[7]).take_frames(), vec![(7, false)]);
    }

    #[test]
    fn a_failed_batch_fails_itself_and_every_later_one() {
        let mut state = state(&[], &[]);
        state.failed_from = Some((2, TransportError::disconnected("gone")));
        assert_eq!(state.outcome_of(1, 2), Some(Ok(())));
        assert!(matches!(state.outcome_of(2, 2), Some(Err(_))));
        assert!(matches!(state.outcome_of(3, 2), Some(Err(_))));
        state.writing = true;
        assert_eq!(state.outcome_of(3, 2), None);
    }
}
