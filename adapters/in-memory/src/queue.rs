use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use fibrpc_ports::Envelope;
use tokio::sync::Notify;

use crate::lock::lock;

/// A queued request and whether it was handed out before.
pub(crate) struct QueuedRequest {
    pub envelope: Envelope,
    pub redelivered: bool,
}

/// A named request queue: FIFO, shared by any number of competing consumers.
#[derive(Default)]
pub struct RequestQueue {
    ready: Mutex<VecDeque<QueuedRequest>>,
    available: Notify,
}

impl RequestQueue {
    pub(crate) fn push(&self, envelope: Envelope) {
        let mut ready = lock(&self.ready);
        // Expired requests at the head go now, as a broker expires them, so a queue nobody
        // consumes does not grow without bound.
        let now = Instant::now();
        while ready
            .front()
            .is_some_and(|head| head.envelope.is_expired_at(now))
        {
            ready.pop_front();
        }
        ready.push_back(QueuedRequest {
            envelope,
            redelivered: false,
        });
        drop(ready);
        self.available.notify_one();
    }

    /// Puts a request handed out earlier back at the head, as a broker requeues it.
    pub(crate) fn requeue(&self, envelope: Envelope) {
        lock(&self.ready).push_front(QueuedRequest {
            envelope,
            redelivered: true,
        });
        self.available.notify_one();
    }

    /// Waits for the next request whose deadline has not passed; expired ones are dropped,
    /// as a broker drops messages whose expiration passed while queued.
    pub(crate) async fn pop(&self) -> QueuedRequest {
        loop {
            let notified = self.available.notified();
            tokio::pin!(notified);
            // Registered before looking, so a push between the look and the wait is not missed.
            notified.as_mut().enable();
            if let Some(request) = self.try_pop() {
                return request;
            }
            notified.await;
        }
    }

    fn try_pop(&self) -> Option<QueuedRequest> {
        let now = Instant::now();
        let mut ready = lock(&self.ready);
        while let Some(request) = ready.pop_front() {
            if !request.envelope.is_expired_at(now) {
                if !ready.is_empty() {
                    // Others may be waiting for what is left.
                    self.available.notify_one();
                }
                return Some(request);
            }
        }
        None
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.ready).len()
    }
}
