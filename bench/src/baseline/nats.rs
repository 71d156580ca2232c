//! A bare request/reply over core NATS with async-nats alone: the competitor fibrpc's NATS
//! transport is measured against (`fibrpc bench --baseline`, `fibrpc bare-echo`).
//!
//! Core NATS request/reply as its documentation shows it: the echo server is a queue-group
//! subscriber that publishes each request's payload to its reply subject; the client is
//! `Client::request`, whose replies come to one shared inbox subscription. Nothing of what
//! fibrpc's transport adds: no JetStream (requests are not stored, acknowledged or delivered
//! again), no headers, no flush per reply. docs/performance.md lists the variants tried.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fibrpc_nats::redact;
use fibrpc_ports::redact::{scrub_urls, LoneUser};
use fibrpc_ports::TransportError;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

/// The queue group every bare echo server joins: each request goes to one of them.
const QUEUE_GROUP: &str = "fibrpc-bare";
/// How long connecting, and the echo's first round trip to itself, may take.
const SETUP_LIMIT: Duration = Duration::from_secs(5);
/// How long a call waits for its reply.
const CALL_LIMIT: Duration = Duration::from_secs(30);

async fn connect(url: &str, name: &str) -> Result<async_nats::Client, TransportError> {
    let address = redact(url);
    let options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(SETUP_LIMIT)
        .request_timeout(Some(CALL_LIMIT));
    tokio::time::timeout(SETUP_LIMIT, options.connect(url))
        .await
        .map_err(|_| TransportError::unanswered(&address, SETUP_LIMIT))?
        .map_err(|error| connect_error(address, url, &error))
}

fn connect_error(address: String, url: &str, error: &async_nats::ConnectError) -> TransportError {
    use async_nats::ConnectErrorKind::{Authentication, AuthorizationViolation};
    let reason = scrub_urls(&error.to_string(), url, LoneUser::Token);
    match error.kind() {
        Authentication | AuthorizationViolation => TransportError::Refused {
            reason: format!("{address}: {reason}"),
        },
        _ => TransportError::Unreachable { address, reason },
    }
}

/// A running echo server, on a connection of its own.
pub struct BareNatsEcho {
    serving: JoinHandle<()>,
    echoed: Arc<AtomicU64>,
}

impl BareNatsEcho {
    /// Subscribes to `subject` in the bare queue group and echoes until stopped. Returns once
    /// a request of its own has come back through the server, so the subscription is live.
    ///
    /// # Errors
    /// `Unreachable` or `Refused` when the server cannot be reached; `Disconnected` or
    /// `Timeout` when the subscription does not answer its own request.
    pub async fn start(url: &str, subject: &str) -> Result<Self, TransportError> {
        let name = format!("fibrpc bare-echo {}", std::process::id());
        let client = connect(url, &name).await?;
        let mut requests = client
            .queue_subscribe(subject.to_owned(), QUEUE_GROUP.to_owned())
            .await
            .map_err(|error| TransportError::disconnected(format!("subscribing: {error}")))?;
        let echoed = Arc::new(AtomicU64::new(0));
        let serving = tokio::spawn({
            let (client, echoed) = (client.clone(), echoed.clone());
            async move {
                // Publishing only queues the reply for the connection's writer: no task per
                // request would make it faster.
                while let Some(request) = requests.next().await {
                    if let Some(reply) = request.reply {
                        if client.publish(reply, request.payload).await.is_err() {
                            break;
                        }
                        echoed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        });
        // The server handles a connection's operations in order: our own request answered
        // means the subscription is in place for everyone else's.
        let probe = client.request(subject.to_owned(), "probe".into());
        match tokio::time::timeout(SETUP_LIMIT, probe).await {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                serving.abort();
                return Err(request_error(subject, &error));
            }
            Err(_) => {
                serving.abort();
                return Err(TransportError::Timeout {
                    operation: format!(
                        "the echo's first request (no answer within {SETUP_LIMIT:?})"
                    ),
                });
            }
        }
        echoed.store(0, Ordering::Relaxed);
        Ok(Self { serving, echoed })
    }
}

#[async_trait]
impl crate::baseline::BareEcho for BareNatsEcho {
    /// Requests answered so far.
    fn echoed(&self) -> u64 {
        self.echoed.load(Ordering::Relaxed)
    }

    /// Resolves when the server stops by itself (its subscription ended).
    async fn ended(&mut self) {
        let _ = (&mut self.serving).await;
    }

    /// Stops answering; the connection closes with the task's client.
    async fn stop(self: Box<Self>) {
        self.serving.abort();
    }
}

/// A client with its own connection. Cheap to clone; clones share the connection.
#[derive(Clone)]
pub struct BareNatsClient {
    client: async_nats::Client,
    subject: String,
}

impl BareNatsClient {
    /// # Errors
    /// `Unreachable` or `Refused` when the server cannot be reached.
    pub async fn connect(url: &str, subject: &str) -> Result<Self, TransportError> {
        let name = format!("fibrpc bare client {}", std::process::id());
        Ok(Self {
            client: connect(url, &name).await?,
            subject: subject.to_owned(),
        })
    }
}

#[async_trait]
impl crate::baseline::BareCall for BareNatsClient {
    /// Sends `body` and returns the reply's payload.
    ///
    /// # Errors
    /// `NoSuchQueue` when no echo server subscribes to the subject; `Timeout` after 30 s
    /// without a reply; `Disconnected` when the connection fails.
    async fn call(&self, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.client
            .request(self.subject.clone(), body.to_vec().into())
            .await
            .map(|reply| reply.payload.to_vec())
            .map_err(|error| request_error(&self.subject, &error))
    }
}

/// A core NATS request (the bare baseline's) failed.
fn request_error(subject: &str, error: &async_nats::RequestError) -> TransportError {
    match error.kind() {
        async_nats::RequestErrorKind::NoResponders => TransportError::NoSuchQueue {
            queue: subject.to_owned(),
        },
        async_nats::RequestErrorKind::TimedOut => TransportError::Timeout {
            operation: format!("a request to {subject}"),
        },
        async_nats::RequestErrorKind::InvalidSubject
        | async_nats::RequestErrorKind::MaxPayloadExceeded => TransportError::Malformed {
            reason: error.to_string(),
        },
        async_nats::RequestErrorKind::Other => TransportError::disconnected(error.to_string()),
    }
}
