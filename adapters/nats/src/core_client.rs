//! Core mode's client side: a request is a core NATS publish to the queue's subject.
//!
//! Core NATS confirms nothing, but a publish that no subscriber takes comes back at once as a
//! "no responders" status (503) on its reply subject. So each request carries a reply subject
//! of its own (`_FIBRPC_NR.<connection>.<token>`: the answer goes to the `Fibrpc-Reply-To`
//! inbox, never there), and a probe to that subject follows it. The server handles a
//! connection's messages in order, so whichever comes back first says it: the 503 (nobody
//! subscribes to the queue: `NoSuchQueue`) or the probe (a server took the request).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::StatusCode;
use fibrpc_ports::{Envelope, TransportError};
use futures_util::StreamExt;
use tokio::sync::oneshot;

use crate::headers::to_headers;
use crate::{errors, names, NatsTransport};

/// How long a request waits for its probe (or a 503) before it reports a timeout.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

type Waiting = Arc<Mutex<HashMap<u64, oneshot::Sender<bool>>>>;

/// One connection's no-responders check: the subscription statuses and probes come back to.
pub(crate) struct Responders {
    prefix: String,
    next: AtomicU64,
    /// Per token: told true on "no responders", false once the probe is back.
    waiting: Waiting,
    listening: tokio::task::AbortHandle,
}

impl Responders {
    async fn start(client: &async_nats::Client) -> Result<Self, TransportError> {
        let connection = client.new_inbox();
        let connection = connection.rsplit('.').next().unwrap_or_default();
        let prefix = format!("{}.{connection}", names::STATUS_PREFIX);
        let mut statuses = client
            .subscribe(format!("{prefix}.*"))
            .await
            .map_err(|error| errors::subscribe(&error))?;
        let waiting = Waiting::default();
        let listening = tokio::spawn({
            let waiting = waiting.clone();
            async move {
                while let Some(message) = statuses.next().await {
                    let token = message.subject.rsplit('.').next();
                    let Some(token) = token.and_then(|token| token.parse::<u64>().ok()) else {
                        continue;
                    };
                    let unanswered = message.status == Some(StatusCode::NO_RESPONDERS);
                    let waiter = lock(&waiting).remove(&token);
                    if let Some(waiter) = waiter {
                        let _ = waiter.send(unanswered);
                    }
                }
            }
        })
        .abort_handle();
        Ok(Self {
            prefix,
            next: AtomicU64::new(0),
            waiting,
            listening,
        })
    }

    /// A fresh status subject, and what will be said on it.
    fn expect(&self) -> (String, Expected<'_>) {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tell, told) = oneshot::channel();
        lock(&self.waiting).insert(token, tell);
        let expected = Expected {
            waiting: &self.waiting,
            token,
            told,
        };
        (format!("{}.{token}", self.prefix), expected)
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        // Its subscription would otherwise keep the connection open.
        self.listening.abort();
    }
}

fn lock(waiting: &Waiting) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<bool>>> {
    waiting
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A request's pending status; dropped (the send abandoned), it leaves nothing behind.
struct Expected<'a> {
    waiting: &'a Waiting,
    token: u64,
    told: oneshot::Receiver<bool>,
}

impl Drop for Expected<'_> {
    fn drop(&mut self) {
        lock(self.waiting).remove(&self.token);
    }
}

/// Publishes `request` to `queue`'s core subject; Ok once a server subscribed to it has it.
pub(crate) async fn send_request(
    transport: &NatsTransport,
    queue: &str,
    request: Envelope,
) -> Result<(), TransportError> {
    let client = &transport.client;
    let responders = transport
        .responders
        .get_or_try_init(|| Responders::start(client))
        .await?;
    let headers = to_headers(&request)?;
    let mut disconnections = transport.disconnections.clone();
    disconnections.mark_unchanged();
    let (status_subject, mut expected) = responders.expect();
    let body = request.body.into();
    let published = if headers.is_empty() {
        // No header block at all: a body of exactly `max_payload` still fits.
        client
            .publish_with_reply(queue.to_owned(), status_subject.clone(), body)
            .await
    } else {
        client
            .publish_with_reply_and_headers(queue.to_owned(), status_subject.clone(), headers, body)
            .await
    };
    published.map_err(|error| errors::core_publish(queue, &error))?;
    client
        .publish(status_subject, Default::default())
        .await
        .map_err(|error| errors::core_publish(queue, &error))?;
    tokio::select! {
        told = tokio::time::timeout(PROBE_LIMIT, &mut expected.told) => match told {
            Ok(Ok(false)) => Ok(()),
            Ok(Ok(true)) => Err(TransportError::NoSuchQueue { queue: queue.to_owned() }),
            // The listener ended with the connection.
            Ok(Err(_)) => Err(errors::unconfirmed(queue)),
            Err(_) => Err(TransportError::Timeout {
                operation: format!("sending a request to {queue:?}"),
            }),
        },
        _ = disconnections.changed() => Err(errors::unconfirmed(queue)),
    }
}
