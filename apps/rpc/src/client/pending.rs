//! The calls waiting for their replies: the one place where replies meet their callers.
//!
//! Every exit path of a call removes its entry: a reply ([`PendingCalls::complete`]), a lost
//! reply address ([`PendingCalls::fail_generation`]), and a timeout or a dropped call future
//! (the [`PendingGuard`]'s drop).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fibrpc_ports::{Envelope, TransportError};
use tokio::sync::oneshot;

pub(crate) type ReplySlot = oneshot::Receiver<Result<Envelope, TransportError>>;

struct Waiter {
    /// The reply address (by generation) the request named in its `reply_to`.
    generation: u64,
    reply: oneshot::Sender<Result<Envelope, TransportError>>,
}

#[derive(Default)]
struct Table {
    waiters: HashMap<String, Waiter>,
    /// Reply addresses up to this generation are gone: their replies can never come.
    lost_up_to: Option<u64>,
}

#[derive(Default)]
pub(crate) struct PendingCalls {
    table: Mutex<Table>,
    unmatched_replies: AtomicU64,
}

impl PendingCalls {
    /// Registers a call that will name reply address `generation`; fails at once if that
    /// address is already known to be lost.
    pub(crate) fn register(
        self: &Arc<Self>,
        correlation_id: String,
        generation: u64,
    ) -> Result<(PendingGuard, ReplySlot), TransportError> {
        let (sender, receiver) = oneshot::channel();
        let mut table = self.lock();
        if table.lost_up_to.is_some_and(|lost| generation <= lost) {
            return Err(TransportError::disconnected(
                "reply address lost before the call was sent",
            ));
        }
        table.waiters.insert(
            correlation_id.clone(),
            Waiter {
                generation,
                reply: sender,
            },
        );
        drop(table);
        let guard = PendingGuard {
            calls: self.clone(),
            correlation_id,
        };
        Ok((guard, receiver))
    }

    /// Hands a reply to the call waiting for it. A reply no call waits for (late, unknown,
    /// or without a correlation id) is dropped and counted: then false.
    pub(crate) fn complete(&self, reply: Envelope) -> bool {
        let waiter = reply
            .correlation_id
            .as_deref()
            .and_then(|id| self.lock().waiters.remove(id));
        match waiter {
            Some(waiter) => {
                // The caller may have given up in the meantime; then there is nobody to tell.
                let _ = waiter.reply.send(Ok(reply));
                true
            }
            None => {
                self.unmatched_replies.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    correlation_id = reply.correlation_id.as_deref().unwrap_or("<none>"),
                    "dropped a reply no call is waiting for"
                );
                false
            }
        }
    }

    /// Fails every call that named a reply address up to `generation`: that address is gone.
    pub(crate) fn fail_generation(&self, generation: u64, error: &TransportError) -> usize {
        let mut table = self.lock();
        table.lost_up_to = Some(generation);
        let lost: Vec<String> = table
            .waiters
            .iter()
            .filter(|(_, waiter)| waiter.generation <= generation)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &lost {
            if let Some(waiter) = table.waiters.remove(id) {
                let _ = waiter.reply.send(Err(error.clone()));
            }
        }
        lost.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.lock().waiters.len()
    }

    pub(crate) fn unmatched_replies(&self) -> u64 {
        self.unmatched_replies.load(Ordering::Relaxed)
    }

    fn lock(&self) -> MutexGuard<'_, Table> {
        // Every update is a single map operation, so a poisoned table is still consistent.
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Removes its call's entry when the call ends in any way.
pub(crate) struct PendingGuard {
    calls: Arc<PendingCalls>,
    correlation_id: String,
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.calls.lock().waiters.remove(&self.correlation_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(id: &str) -> Envelope {
        Envelope {
            correlation_id: Some(id.to_owned()),
            ..Envelope::default()
        }
    }

    #[test]
    fn a_reply_reaches_its_own_caller_only() {
        let calls = Arc::new(PendingCalls::default());
        let (_a_guard, mut a) = calls.register("a".into(), 0).unwrap();
        let (_b_guard, mut b) = calls.register("b".into(), 0).unwrap();
        calls.complete(reply("b"));
        assert_eq!(
            b.try_recv().unwrap().unwrap().correlation_id.as_deref(),
            Some("b")
        );
        assert!(a.try_recv().is_err());
        assert_eq!(calls.len(), 1);
    }

    #[test]
    fn dropping_the_guard_removes_the_entry_and_late_replies_are_counted() {
        let calls = Arc::new(PendingCalls::default());
        let (guard, _slot) = calls.register("a".into(), 0).unwrap();
        drop(guard);
        assert_eq!(calls.len(), 0);
        calls.complete(reply("a"));
        calls.complete(Envelope::default());
        assert_eq!(calls.unmatched_replies(), 2);
    }

    #[test]
    fn a_lost_generation_fails_its_calls_and_refuses_new_ones() {
        let calls = Arc::new(PendingCalls::default());
        let (_old_guard, mut old) = calls.register("old".into(), 0).unwrap();
        let (_new_guard, mut new) = calls.register("new".into(), 1).unwrap();
        let error = TransportError::disconnected("test");
        assert_eq!(calls.fail_generation(0, &error), 1);
        assert_eq!(old.try_recv().unwrap(), Err(error));
        assert!(new.try_recv().is_err());
        assert!(calls.register("late".into(), 0).is_err());
        assert!(calls.register("fresh".into(), 1).is_ok());
    }
}
