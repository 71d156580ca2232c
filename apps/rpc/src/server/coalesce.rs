//! Coalesced replies: replies for one reply address that become ready while another reply to
//! it is being sent go out together, as one batch message, next.
//!
//! No timer: the first reply to an idle address goes out at once, through its own request's
//! handle. Replies that become ready meanwhile queue on the address's [`Lane`]; when the send
//! in progress returns, the first of them sends them all, through its own handle. So every
//! request sends at most one message, and is settled (by its caller) only once the message
//! carrying its reply is out.
//!
//! Lanes are per request stream: on AMQP a reply goes out on the channel that delivered the
//! request, so a reply sent through another request's handle must share its channel for the
//! reply to precede the acknowledgement that follows.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use fibrpc_ports::{Envelope, IncomingRequest, TransportError};
use tokio::sync::oneshot;

use crate::batch::frame::{self, BATCH_CONTENT_TYPE};

/// Bytes of replies per coalesced message at most (NATS refuses messages above 1 MiB by
/// default); a larger reply goes alone.
const MAX_BATCH_BYTES: usize = 256 * 1024;

/// The reply addresses with a send in progress, per request stream.
#[derive(Default)]
pub(crate) struct Lanes {
    lanes: Mutex<HashMap<u64, HashMap<String, Lane>>>,
}

/// An address with a send in progress (its presence in [`Lanes`] says so), and the replies
/// that became ready meanwhile.
#[derive(Default)]
struct Lane {
    waiting: Vec<Waiting>,
}

struct Waiting {
    replies: Vec<Envelope>,
    turn: oneshot::Sender<Turn>,
}

enum Turn {
    /// Another request sent these replies; how that went.
    Sent(Result<(), TransportError>),
    /// This request sends its own replies and `others`', now.
    Lead {
        mine: Vec<Envelope>,
        others: Vec<Waiting>,
    },
}

impl Lanes {
    /// Sends `replies` to `reply_to` for requests of stream `stream`, through `request`'s
    /// handle or another's of the same stream, alone or with others ready meanwhile; returns
    /// once the message carrying them is out (as [`IncomingRequest::reply`] does), or failed.
    pub(crate) async fn send(
        &self,
        stream: u64,
        reply_to: &str,
        request: &mut IncomingRequest,
        mut replies: Vec<Envelope>,
    ) -> Result<(), TransportError> {
        let queued = {
            let mut lanes = self.lock();
            let by_address = lanes.entry(stream).or_default();
            match by_address.get_mut(reply_to) {
                Some(lane) => {
                    let (turn, my_turn) = oneshot::channel();
                    let replies = std::mem::take(&mut replies);
                    lane.waiting.push(Waiting { replies, turn });
                    Some(my_turn)
                }
                None => {
                    by_address.insert(reply_to.to_owned(), Lane::default());
                    None
                }
            }
        };
        let (mine, others) = match queued {
            None => (replies, Vec::new()),
            Some(my_turn) => match my_turn.await {
                Ok(Turn::Sent(sent)) => return sent,
                Ok(Turn::Lead { mine, others }) => (mine, others),
                // The request that was sending ours is gone (its server task aborted): ours
                // was not sent; left for redelivery.
                Err(_) => {
                    return Err(TransportError::disconnected(
                        "the request sending this reply was dropped",
                    ))
                }
            },
        };
        let leading = Leading {
            lanes: self,
            stream,
            reply_to,
        };
        let sent = send_all(request, reply_to, mine, &others).await;
        for other in others {
            let _ = other.turn.send(Turn::Sent(sent.clone()));
        }
        drop(leading);
        sent
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, HashMap<String, Lane>>> {
        // Every update is a few map operations with no await: a poisoned map is consistent.
        self.lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The send in progress on `reply_to` is over: the replies that queued meanwhile go next,
    /// sent by the first of their requests still there; with none, the address is idle.
    fn pass_on(&self, stream: u64, reply_to: &str) {
        let mut lanes = self.lock();
        let Some(by_address) = lanes.get_mut(&stream) else {
            return;
        };
        let mut waiting = match by_address.get_mut(reply_to) {
            Some(lane) => std::mem::take(&mut lane.waiting),
            None => return,
        };
        while !waiting.is_empty() {
            let first = waiting.remove(0);
            let lead = Turn::Lead {
                mine: first.replies,
                others: waiting,
            };
            match first.turn.send(lead) {
                Ok(()) => return,
                // That request is gone (left for redelivery): the next one leads.
                Err(Turn::Lead { others, .. }) => waiting = others,
                Err(Turn::Sent(_)) => return,
            }
        }
        // The stream's map stays, empty, with its capacity: streams are few (one per
        // reconnection), addresses many.
        by_address.remove(reply_to);
    }
}

/// Passes the lane on when its sender is done, or dropped midway (a server task aborted).
struct Leading<'a> {
    lanes: &'a Lanes,
    stream: u64,
    reply_to: &'a str,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        self.lanes.pass_on(self.stream, self.reply_to);
    }
}

/// Sends `mine` and `others`' replies: one alone as itself, several as batches of at most
/// [`MAX_BATCH_BYTES`]. The first failure ends it, and is everyone's.
async fn send_all(
    request: &mut IncomingRequest,
    reply_to: &str,
    mine: Vec<Envelope>,
    others: &[Waiting],
) -> Result<(), TransportError> {
    if others.is_empty() && mine.len() == 1 {
        if let Some(reply) = mine.into_iter().next() {
            return request.reply(reply_to, reply).await;
        }
        return Ok(());
    }
    let all: Vec<&Envelope> = mine
        .iter()
        .chain(others.iter().flat_map(|other| other.replies.iter()))
        .collect();
    let mut start = 0;
    while start < all.len() {
        let mut end = start + 1;
        let mut bytes = frame::item_size(all[start]);
        while end < all.len() && bytes + frame::item_size(all[end]) <= MAX_BATCH_BYTES {
            bytes += frame::item_size(all[end]);
            end += 1;
        }
        let message = match &all[start..end] {
            [one] => (*one).clone(),
            several => Envelope {
                content_type: Some(BATCH_CONTENT_TYPE.to_owned()),
                body: frame::encode(several.iter().copied()),
                ..Envelope::default()
            },
        };
        request.reply(reply_to, message).await?;
        start = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Waker};

    use self::recorder::Recorder;
    use futures_util::FutureExt;
    use tokio::sync::Semaphore;

    use super::*;

    /// A request handle that records the replies sent through it, each once the gate lets it.
    mod recorder {
        use std::sync::{Arc, Mutex};

        use fibrpc_ports::{Envelope, Settle, TransportError};
        use tokio::sync::Semaphore;

        pub(super) type Log = Arc<Mutex<Vec<(&'static str, Envelope)>>>;

        pub(super) struct Recorder {
            pub name: &'static str,
            pub log: Log,
            pub gate: Arc<Semaphore>,
        }

        #[async_trait::async_trait]
        impl Settle for Recorder {
            async fn ack(self: Box<Self>) -> Result<(), TransportError> {
                Ok(())
            }

            async fn reject(self: Box<Self>, _: bool) -> Result<(), TransportError> {
                Ok(())
            }

            async fn reply(&mut self, _: &str, reply: Envelope) -> Result<(), TransportError> {
                let permit = self.gate.acquire().await;
                permit
                    .map_err(|_| TransportError::disconnected("gate closed"))?
                    .forget();
                self.log.lock().unwrap().push((self.name, reply));
                Ok(())
            }
        }
    }

    fn request(name: &'static str, log: &recorder::Log, gate: &Arc<Semaphore>) -> IncomingRequest {
        let recorder = Recorder {
            name,
            log: log.clone(),
            gate: gate.clone(),
        };
        IncomingRequest::new(Envelope::default(), false, Box::new(recorder))
    }

    fn reply(id: &str) -> Vec<Envelope> {
        vec![Envelope {
            correlation_id: Some(id.to_owned()),
            ..Envelope::with_body(id)
        }]
    }

    fn is_pending<F: Future>(future: &mut Pin<Box<F>>) -> bool {
        let mut context = Context::from_waker(Waker::noop());
        future.poll_unpin(&mut context).is_pending()
    }

    fn idle(lanes: &Lanes) -> bool {
        lanes.lock().values().all(HashMap::is_empty)
    }

    fn ids(message: &Envelope) -> Vec<String> {
        if frame::is_batch(message) {
            let items = frame::decode(&message.body).unwrap();
            items
                .into_iter()
                .filter_map(|item| item.envelope.correlation_id)
                .collect()
        } else {
            message.correlation_id.clone().into_iter().collect()
        }
    }

    #[tokio::test]
    async fn replies_ready_during_a_send_go_together_next_through_the_first_of_them() {
        let (log, gate) = (Default::default(), Arc::new(Semaphore::new(0)));
        let lanes = Lanes::default();
        let (mut a, mut b, mut c) = (
            request("a", &log, &gate),
            request("b", &log, &gate),
            request("c", &log, &gate),
        );
        let mut first = Box::pin(lanes.send(0, "r", &mut a, reply("1")));
        assert!(is_pending(&mut first), "the first reply is being sent");
        let mut second = Box::pin(lanes.send(0, "r", &mut b, reply("2")));
        let mut third = Box::pin(lanes.send(0, "r", &mut c, reply("3")));
        assert!(is_pending(&mut second) && is_pending(&mut third));
        // Another address, or another stream, is not held up.
        let mut other = request("o", &log, &gate);
        let mut elsewhere = Box::pin(lanes.send(1, "r", &mut other, reply("4")));
        assert!(is_pending(&mut elsewhere));
        gate.add_permits(3);
        let (first, second, third, elsewhere) = tokio::join!(first, second, third, elsewhere);
        assert_eq!(
            (first, second, third, elsewhere),
            (Ok(()), Ok(()), Ok(()), Ok(()))
        );
        let log = log.lock().unwrap();
        let sent: Vec<(&str, Vec<String>)> = log
            .iter()
            .map(|(by, message)| (*by, ids(message)))
            .collect();
        assert_eq!(sent.len(), 3, "{sent:?}");
        assert!(sent.contains(&("a", vec!["1".to_owned()])));
        assert!(sent.contains(&("b", vec!["2".to_owned(), "3".to_owned()])));
        assert!(sent.contains(&("o", vec!["4".to_owned()])));
        assert!(idle(&lanes), "idle lanes are removed");
    }

    #[tokio::test]
    async fn a_sender_dropped_midway_hands_the_lane_on() {
        let (log, gate) = (Default::default(), Arc::new(Semaphore::new(0)));
        let lanes = Lanes::default();
        let (mut a, mut b) = (request("a", &log, &gate), request("b", &log, &gate));
        let mut first = Box::pin(lanes.send(0, "r", &mut a, reply("1")));
        assert!(is_pending(&mut first));
        let mut second = Box::pin(lanes.send(0, "r", &mut b, reply("2")));
        assert!(is_pending(&mut second));
        drop(first);
        gate.add_permits(1);
        assert_eq!(second.await, Ok(()));
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1);
        assert_eq!((log[0].0, ids(&log[0].1)), ("b", vec!["2".to_owned()]));
        assert!(idle(&lanes));
    }

    #[tokio::test]
    async fn a_failed_send_is_the_failure_of_every_reply_in_it() {
        let (log, gate) = (Default::default(), Arc::new(Semaphore::new(0)));
        let lanes = Lanes::default();
        let (mut a, mut b, mut c) = (
            request("a", &log, &gate),
            request("b", &log, &gate),
            request("c", &log, &gate),
        );
        let mut first = Box::pin(lanes.send(0, "r", &mut a, reply("1")));
        assert!(is_pending(&mut first));
        let second = lanes.send(0, "r", &mut b, reply("2"));
        let third = lanes.send(0, "r", &mut c, reply("3"));
        let (mut second, mut third) = (Box::pin(second), Box::pin(third));
        assert!(is_pending(&mut second) && is_pending(&mut third));
        gate.add_permits(1);
        assert_eq!(first.await, Ok(()));
        gate.close();
        let failed = Err(TransportError::disconnected("gate closed"));
        assert_eq!(second.await, failed);
        assert_eq!(third.await, failed);
        assert!(idle(&lanes));
    }
}
