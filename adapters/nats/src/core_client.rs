//! Core mode's client side: a request is a core NATS publish to the queue's subject.
//!
//! Core NATS confirms nothing, but a publish that no subscriber takes comes back at once as a
//! "no responders" status (503) on its reply subject. So each request carries a reply subject
//! of its own (`_FIBRPC_NR.<connection>.<token>`: the answer goes to the `Fibrpc-Reply-To`
//! inbox, never there), and a probe follows it. The NATS server handles a connection's
//! messages in order, so by the time the probe comes back, a 503 for any request published
//! before it has come back too: a request with no 503 by then reached a server. One probe
//! answers for every request published before it, so under load one probe serves many.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_nats::StatusCode;
use fibrpc_ports::{Envelope, TransportError};
use futures_util::StreamExt;
use tokio::sync::{oneshot, Notify};

use crate::headers::to_headers;
use crate::{errors, names, NatsTransport};

/// How long a request waits for its probe (or a 503) before it reports a timeout.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

/// What the requests in flight wait for, shared by the senders, the prober and the router.
#[derive(Default)]
struct Waiting {
    /// Per request token: told true on "no responders", false once a later probe is back.
    requests: HashMap<u64, oneshot::Sender<bool>>,
    /// Requests published and not yet covered by a probe.
    unprobed: Vec<u64>,
    /// Per probe sent: the requests it answers for.
    probes: HashMap<u64, Vec<u64>>,
}

type Shared = Arc<Mutex<Waiting>>;

fn lock(shared: &Shared) -> MutexGuard<'_, Waiting> {
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One connection's no-responders check: the subscription statuses and probes come back to,
/// and the task that sends probes.
pub(crate) struct Responders {
    prefix: String,
    next: AtomicU64,
    shared: Shared,
    /// Wakes the prober: requests were published.
    published: Arc<Notify>,
    tasks: [tokio::task::AbortHandle; 2],
}

impl Responders {
    async fn start(client: &async_nats::Client) -> Result<Self, TransportError> {
        let connection = client.new_inbox();
        let connection = connection.rsplit('.').next().unwrap_or_default();
        let prefix = format!("{}.{connection}", names::STATUS_PREFIX);
        let statuses = client
            .subscribe(format!("{prefix}.*"))
            .await
            .map_err(|error| errors::subscribe(&error))?;
        let shared = Shared::default();
        let published = Arc::new(Notify::new());
        let routing = tokio::spawn(route(statuses, shared.clone())).abort_handle();
        let probing = tokio::spawn(probe(
            client.clone(),
            prefix.clone(),
            shared.clone(),
            published.clone(),
        ))
        .abort_handle();
        Ok(Self {
            prefix,
            next: AtomicU64::new(0),
            shared,
            published,
            tasks: [routing, probing],
        })
    }

    /// A fresh status subject, and what will be said on it.
    fn expect(&self) -> (String, Expected<'_>) {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let (tell, told) = oneshot::channel();
        lock(&self.shared).requests.insert(token, tell);
        let expected = Expected {
            shared: &self.shared,
            token,
            told,
        };
        (format!("{}.{token}", self.prefix), expected)
    }

    /// The request `token` is published: the next probe answers for it.
    fn published(&self, token: u64) {
        lock(&self.shared).unprobed.push(token);
        self.published.notify_one();
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        // Their subscription and client would otherwise keep the connection open.
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Sends a probe after each wave of published requests, to `<prefix>.p<n>`.
async fn probe(client: async_nats::Client, prefix: String, shared: Shared, published: Arc<Notify>) {
    let mut sent = 0u64;
    loop {
        published.notified().await;
        let wave = std::mem::take(&mut lock(&shared).unprobed);
        if wave.is_empty() {
            continue;
        }
        // Taken after those requests were published: the probe goes after them.
        lock(&shared).probes.insert(sent, wave);
        // A lost probe (the connection dropped) leaves its requests to their disconnection
        // or time limit.
        let _ = client
            .publish(format!("{prefix}.p{sent}"), Default::default())
            .await;
        sent += 1;
    }
}

/// Tells each request what came back: a 503 for it, or a probe sent after it.
async fn route(mut statuses: async_nats::Subscriber, shared: Shared) {
    while let Some(message) = statuses.next().await {
        let Some(token) = message.subject.rsplit('.').next() else {
            continue;
        };
        let mut waiting = lock(&shared);
        if let Some(probe) = token.strip_prefix('p') {
            let wave = probe
                .parse::<u64>()
                .ok()
                .and_then(|probe| waiting.probes.remove(&probe));
            for token in wave.unwrap_or_default() {
                if let Some(waiter) = waiting.requests.remove(&token) {
                    let _ = waiter.send(false);
                }
            }
        } else if message.status == Some(StatusCode::NO_RESPONDERS) {
            let waiter = token
                .parse::<u64>()
                .ok()
                .and_then(|token| waiting.requests.remove(&token));
            if let Some(waiter) = waiter {
                let _ = waiter.send(true);
            }
        }
    }
}

/// A request's pending status; dropped (the send abandoned), it leaves nothing behind but its
/// token in a probe's wave, which the probe's return clears.
struct Expected<'a> {
    shared: &'a Shared,
    token: u64,
    told: oneshot::Receiver<bool>,
}

impl Drop for Expected<'_> {
    fn drop(&mut self) {
        lock(self.shared).requests.remove(&self.token);
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
    responders.published(expected.token);
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
