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
        by_address.remove(reply_to);
        if by_address.is_empty() {
            lanes.remove(&stream);
        }
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
