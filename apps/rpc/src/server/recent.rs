//! The server's memory of the calls to procedures that are not idempotent it answered lately,
//! by correlation id: a repeat of one (the client sent it again after a lost connection, or
//! the broker delivered it again after a reply that was not acknowledged) is answered with
//! the stored reply instead of running again. A repeat that comes while the first is still
//! running waits for it.
//!
//! Bounded in count and in age: it covers repeats within a client's deadline, not forever,
//! and only on this server (another server that takes a copy runs it).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::answer::Answer;

/// Calls remembered at most: past it the oldest are forgotten.
pub(crate) const MAX_CALLS: usize = 16_384;
/// How long a call is remembered: far past any sensible call deadline, within which clients
/// send again.
pub(crate) const REMEMBERED_FOR: Duration = Duration::from_secs(300);

type Stored = Option<Arc<Answer>>;

/// Whether this server has seen a call before.
pub(crate) enum Seen {
    /// First time (or the first attempt gave up): run it, then [`First::store`] the answer.
    First(First),
    /// Answered before (perhaps while this one waited): the stored answer.
    Answered(Arc<Answer>),
}

/// The right to run a call first. Dropped without storing (the run was cancelled, or its
/// task ended), it forgets the call, and a repeat waiting for it runs it instead.
pub(crate) struct First {
    recent: Arc<RecentCalls>,
    key: Key,
    seq: u64,
    answer: Option<watch::Sender<Stored>>,
}

impl First {
    /// Keeps `answer` for repeats, before it is sent: a redelivery after a reply that failed
    /// finds it.
    pub(crate) fn store(mut self, answer: &Answer) {
        if let Some(sender) = self.answer.take() {
            sender.send_replace(Some(Arc::new(answer.clone())));
        }
    }
}

impl Drop for First {
    fn drop(&mut self) {
        if self.answer.is_some() {
            let mut state = self.recent.lock();
            if state
                .calls
                .get(&self.key)
                .is_some_and(|call| call.seq == self.seq)
            {
                state.calls.remove(&self.key);
            }
        }
    }
}

/// A procedure's name and a correlation id.
type Key = (&'static str, String);

struct Call {
    seq: u64,
    answer: watch::Receiver<Stored>,
}

#[derive(Default)]
struct State {
    calls: HashMap<Key, Call>,
    /// Oldest first, for forgetting: (seq, key, when).
    order: VecDeque<(u64, Key, Instant)>,
    next_seq: u64,
}

#[derive(Default)]
pub(crate) struct RecentCalls {
    state: Mutex<State>,
}

impl RecentCalls {
    /// For a call to a procedure that is `remembered`: the right to run it first, or the
    /// answer it got before (`Err`). Nothing for other procedures and calls without an id.
    pub(crate) async fn recall(
        self: &Arc<Self>,
        remembered: bool,
        procedure: &'static str,
        correlation_id: Option<&str>,
    ) -> Result<Option<First>, Arc<Answer>> {
        let (true, Some(correlation_id)) = (remembered, correlation_id) else {
            return Ok(None);
        };
        match self.begin(procedure, correlation_id).await {
            Seen::First(first) => Ok(Some(first)),
            Seen::Answered(answer) => {
                tracing::debug!(correlation_id, "a repeat: answered from memory");
                Err(answer)
            }
        }
    }

    /// Whether the call `correlation_id` to `procedure` was seen; waits for its first run to
    /// end if it is still running.
    pub(crate) async fn begin(
        self: &Arc<Self>,
        procedure: &'static str,
        correlation_id: &str,
    ) -> Seen {
        let key: Key = (procedure, correlation_id.to_owned());
        loop {
            let mut running = {
                let mut state = self.lock();
                state.forget_old(Instant::now());
                match state.calls.get(&key) {
                    Some(call) => call.answer.clone(),
                    None => return Seen::First(self.first(&mut state, key)),
                }
            };
            let answer = running
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|answer| answer.clone());
            if let Some(answer) = answer {
                return Seen::Answered(answer);
            }
            // The first run ended without an answer: this one runs it.
        }
    }

    fn first(self: &Arc<Self>, state: &mut State, key: Key) -> First {
        let (sender, receiver) = watch::channel(None);
        let seq = state.next_seq;
        state.next_seq += 1;
        state.calls.insert(
            key.clone(),
            Call {
                seq,
                answer: receiver,
            },
        );
        state.order.push_back((seq, key.clone(), Instant::now()));
        while state.calls.len() > MAX_CALLS {
            state.forget_oldest();
        }
        First {
            recent: self.clone(),
            key,
            seq,
            answer: Some(sender),
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().calls.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update leaves the maps consistent, so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    fn forget_old(&mut self, now: Instant) {
        while self
            .order
            .front()
            .is_some_and(|(_, _, when)| now.duration_since(*when) > REMEMBERED_FOR)
        {
            self.forget_oldest();
        }
        // Entries removed early (runs that gave up) leave stale order entries: bound them.
        while self.order.len() > 2 * MAX_CALLS {
            self.forget_oldest();
        }
    }

    fn forget_oldest(&mut self) {
        if let Some((seq, key, _)) = self.order.pop_front() {
            if self.calls.get(&key).is_some_and(|call| call.seq == seq) {
                self.calls.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::BINCODE;

    fn answer(body: &[u8]) -> Answer {
        Answer {
            codec: BINCODE,
            body: body.to_vec(),
            failed: None,
        }
    }

    fn first(seen: Seen) -> First {
        match seen {
            Seen::First(first) => first,
            Seen::Answered(_) => panic!("seen as answered"),
        }
    }

    fn answered(seen: Seen) -> Vec<u8> {
        match seen {
            Seen::Answered(answer) => answer.body.clone(),
            Seen::First(_) => panic!("seen as first"),
        }
    }

    #[tokio::test]
    async fn a_repeat_gets_the_stored_answer() {
        let recent = Arc::new(RecentCalls::default());
        first(recent.begin("p", "a").await).store(&answer(b"1"));
        assert_eq!(answered(recent.begin("p", "a").await), b"1");
        // Another procedure, another id: not a repeat.
        first(recent.begin("q", "a").await).store(&answer(b"2"));
        first(recent.begin("p", "b").await).store(&answer(b"3"));
    }

    #[tokio::test]
    async fn a_repeat_during_the_first_run_waits_for_its_answer() {
        let recent = Arc::new(RecentCalls::default());
        let running = first(recent.begin("p", "a").await);
        let repeat = tokio::spawn({
            let recent = recent.clone();
            async move { answered(recent.begin("p", "a").await) }
        });
        tokio::task::yield_now().await;
        assert!(!repeat.is_finished());
        running.store(&answer(b"1"));
        assert_eq!(repeat.await.unwrap(), b"1");
    }

    #[tokio::test]
    async fn a_first_run_that_gives_up_lets_the_repeat_run() {
        let recent = Arc::new(RecentCalls::default());
        let running = first(recent.begin("p", "a").await);
        let repeat = tokio::spawn({
            let recent = recent.clone();
            async move { first(recent.begin("p", "a").await).store(&answer(b"2")) }
        });
        tokio::task::yield_now().await;
        drop(running);
        repeat.await.unwrap();
        assert_eq!(answered(recent.begin("p", "a").await), b"2");
    }

    #[tokio::test(start_paused = true)]
    async fn calls_are_forgotten_by_count_and_by_age() {
        let recent = Arc::new(RecentCalls::default());
        for id in 0..=MAX_CALLS {
            first(recent.begin("p", &id.to_string()).await).store(&answer(b""));
        }
        assert_eq!(recent.len(), MAX_CALLS);
        // The oldest went first.
        first(recent.begin("p", "0").await).store(&answer(b""));
        tokio::time::advance(REMEMBERED_FOR + Duration::from_secs(1)).await;
        first(recent.begin("p", "new").await).store(&answer(b""));
        assert_eq!(recent.len(), 1);
    }
}
