//! Pulling requests from the queue's shared durable consumer, one pull request at a time, on
//! a core NATS subscription of the stream's own.
//!
//! Why not async-nats's `pull::Stream`: with one message per pull its bookkeeping races. The
//! message can arrive before the stream has recorded that its pull request went out; it then
//! counts on a message still to come that never will, sends no new pull request, and stalls
//! until its missed-heartbeat alarm (about once in a few thousand requests in the kit). One pull request
//! at a time, answered by a message or by its expiry, leaves nothing to count.

use std::time::Duration;

use async_nats::jetstream;
use async_nats::{Client, StatusCode, Subscriber};
use fibrpc_ports::TransportError;
use futures_util::StreamExt;

use crate::errors;

/// How long one pull request waits on the server for a request to arrive; then the server
/// answers "408 Request Timeout" and another is sent. Short, in case a stopped server's last
/// pull request outlives its subscription and is handed a message (which then comes back only
/// after the ack wait).
const PULL_EXPIRES: Duration = Duration::from_secs(4);

/// How often the server signals a pull request still waiting.
const HEARTBEAT: Duration = Duration::from_secs(1);

/// Silence after which JetStream is taken to be gone although the connection stays up (a lost
/// connection is reported sooner, by the client's events). Three heartbeats: the server's own
/// timers and a busy two-core machine make two too few.
const SILENCE_LIMIT: Duration = Duration::from_secs(3);

/// The subject of the JetStream API that hands out a consumer's next messages.
fn next_subject(stream: &str, consumer: &str) -> String {
    format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}")
}

/// One message; expiry and heartbeat in nanoseconds, as the API wants them.
fn pull_request() -> String {
    format!(
        r#"{{"batch":1,"expires":{},"idle_heartbeat":{}}}"#,
        PULL_EXPIRES.as_nanos(),
        HEARTBEAT.as_nanos()
    )
}

pub(crate) struct Puller {
    client: Client,
    jetstream: jetstream::Context,
    subject: String,
    inbox: String,
    subscriber: Subscriber,
    /// A pull request is live on the server: it may still bring a message, even after the
    /// wait for it was abandoned.
    outstanding: bool,
}

impl Puller {
    /// Subscribes the inbox the messages of `consumer` (of `stream`) will come to. Pull
    /// requests go out on the same connection after the subscription, so no flush is needed:
    /// the server handles one connection's operations in order.
    pub(crate) async fn start(
        client: &Client,
        jetstream: &jetstream::Context,
        stream: &str,
        consumer: &str,
    ) -> Result<Self, TransportError> {
        let inbox = client.new_inbox();
        let subscriber = client
            .subscribe(inbox.clone())
            .await
            .map_err(|error| errors::subscribe(&error))?;
        Ok(Self {
            client: client.clone(),
            jetstream: jetstream.clone(),
            subject: next_subject(stream, consumer),
            inbox,
            subscriber,
            outstanding: false,
        })
    }

    pub(crate) fn outstanding(&self) -> bool {
        self.outstanding
    }

    /// The next message of the consumer, waiting as long as it takes; an error ends the
    /// puller. Abandoning the wait loses nothing: the pull request stays outstanding and the
    /// next call, or [`hand_back`](Self::hand_back), receives what it brings.
    pub(crate) async fn next(&mut self) -> Result<jetstream::Message, TransportError> {
        loop {
            if !self.outstanding {
                self.client
                    .publish_with_reply(
                        self.subject.clone(),
                        self.inbox.clone(),
                        pull_request().into(),
                    )
                    .await
                    .map_err(|error| errors::pull_request(&error))?;
                self.outstanding = true;
            }
            let message = match tokio::time::timeout(SILENCE_LIMIT, self.subscriber.next()).await {
                Ok(Some(message)) => message,
                Ok(None) => return Err(errors::subscription_ended()),
                Err(_) => return Err(errors::jetstream_silent(SILENCE_LIMIT)),
            };
            match message.status {
                None | Some(StatusCode::OK) => {
                    self.outstanding = false;
                    return Ok(jetstream::Message {
                        message,
                        context: self.jetstream.clone(),
                    });
                }
                Some(StatusCode::IDLE_HEARTBEAT) => {}
                // The pull request expired unanswered: the queue was empty. Ask again.
                Some(StatusCode::TIMEOUT) => self.outstanding = false,
                Some(status) => {
                    self.outstanding = false;
                    return Err(errors::pull_status(status, message.description.as_deref()));
                }
            }
        }
    }

    /// Gives back to the queue (NAK) the message an outstanding pull request brings, if it
    /// brings one soon; the puller is dropped after, which unsubscribes, and the server then
    /// drops the pull request for want of interest.
    pub(crate) async fn hand_back(mut self, limit: Duration) {
        if !self.outstanding {
            return;
        }
        let give_up = tokio::time::Instant::now() + limit;
        while let Ok(Some(message)) = tokio::time::timeout_at(give_up, self.subscriber.next()).await
        {
            if matches!(message.status, None | Some(StatusCode::OK)) {
                let message = jetstream::Message {
                    message,
                    context: self.jetstream.clone(),
                };
                let _ = message.ack_with(jetstream::AckKind::Nak(None)).await;
                return;
            }
            if message.status != Some(StatusCode::IDLE_HEARTBEAT) {
                // Expired or refused: nothing will come.
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pull_request_asks_for_one_message() {
        assert_eq!(
            pull_request(),
            r#"{"batch":1,"expires":4000000000,"idle_heartbeat":1000000000}"#
        );
        assert_eq!(
            next_subject("FIBRPC_q", "FIBRPC_q"),
            "$JS.API.CONSUMER.MSG.NEXT.FIBRPC_q.FIBRPC_q"
        );
    }
}
