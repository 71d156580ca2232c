//! Answers one request: read it, compute, reply, and only then acknowledge.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use fibrpc_domain::{DomainError, FibRequest, Fibonacci};
use fibrpc_ports::{Envelope, IncomingRequest, ReplyTransport, TransportError};

use super::ServerStats;
use crate::codec::Codec;

/// Past this n the computation (and its decimal rendering) takes long enough to stall an
/// async worker thread, so it moves to the blocking pool.
const BLOCKING_THRESHOLD_N: u64 = 20_000;

pub(super) struct Handler {
    transport: Arc<dyn ReplyTransport>,
    service: Fibonacci,
    max_body_bytes: usize,
    stats: Arc<ServerStats>,
}

impl Handler {
    pub(super) fn new(
        transport: Arc<dyn ReplyTransport>,
        service: Fibonacci,
        max_body_bytes: usize,
        stats: Arc<ServerStats>,
    ) -> Self {
        Self {
            transport,
            service,
            max_body_bytes,
            stats,
        }
    }

    pub(super) async fn handle(&self, mut request: IncomingRequest) {
        let envelope = &request.envelope;
        let correlation_id = envelope.correlation_id.clone().unwrap_or_default();
        let Some(reply_to) = envelope.reply_to.clone() else {
            self.stats.without_reply_to.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%correlation_id, "request without reply_to: nobody to answer; acknowledged");
            settle(request.ack().await);
            return;
        };
        if envelope.is_expired_at(Instant::now()) {
            self.stats.expired.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%correlation_id, "request past its deadline: acknowledged unanswered");
            settle(request.ack().await);
            return;
        }

        let (codec, body, failed) = self.answer(envelope).await;
        let reply = Envelope {
            correlation_id: envelope.correlation_id.clone(),
            reply_to: None,
            content_type: Some(codec.content_type().to_owned()),
            deadline: None,
            body,
        };
        match request
            .send_reply(self.transport.as_ref(), &reply_to, reply)
            .await
        {
            Ok(()) => {
                let counter = if failed {
                    &self.stats.error_replies
                } else {
                    &self.stats.answered
                };
                counter.fetch_add(1, Ordering::Relaxed);
                settle(request.ack().await);
                tracing::debug!(%correlation_id, "answered");
            }
            Err(error) if error.is_disconnection() => {
                // Left unsettled: the broker hands the request out again once we are back.
                tracing::warn!(%error, %correlation_id, "reply not sent; the request will be redelivered");
            }
            Err(error) => {
                // Retrying would fail the same way; the caller's deadline ends its wait.
                self.stats
                    .unroutable_replies
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%error, %correlation_id, %reply_to, "reply not deliverable; request acknowledged");
                settle(request.ack().await);
            }
        }
    }

    /// The reply's codec and body, and whether it is an error reply.
    async fn answer(&self, envelope: &Envelope) -> (Codec, Vec<u8>, bool) {
        let (codec, admitted) = self.read_request(envelope);
        let request = match admitted {
            Ok(request) => request,
            Err(error) => {
                tracing::warn!(
                    correlation_id = envelope.correlation_id.as_deref().unwrap_or_default(),
                    %error,
                    "bad request: sending an error reply"
                );
                return (codec, codec.encode_reply(&Err(error)), true);
            }
        };
        let service = self.service;
        let compute = move || codec.encode_reply(&service.answer(request));
        if request.n < BLOCKING_THRESHOLD_N {
            return (codec, compute(), false);
        }
        match tokio::task::spawn_blocking(compute).await {
            Ok(body) => (codec, body, false),
            Err(error) => {
                let error = DomainError::Internal {
                    reason: format!("computation failed: {error}"),
                };
                (codec, codec.encode_reply(&Err(error)), true)
            }
        }
    }

    /// The request in the envelope, if it is readable and within the service's bounds.
    fn read_request(&self, envelope: &Envelope) -> (Codec, Result<FibRequest, DomainError>) {
        let codec = match Codec::for_content_type(envelope.content_type.as_deref()) {
            Ok(codec) => codec,
            Err(error) => return (Codec::Text, Err(error)),
        };
        if envelope.body.len() > self.max_body_bytes {
            let error = DomainError::BodyTooLarge {
                size: envelope.body.len() as u64,
                max: self.max_body_bytes as u64,
            };
            return (codec, Err(error));
        }
        let admitted = codec
            .decode_request(&envelope.body)
            .and_then(|request| self.service.admit(request).map(|()| request));
        (codec, admitted)
    }
}

/// A settle that fails means the connection is gone; the broker redelivers, nothing to do.
fn settle(result: Result<(), TransportError>) {
    if let Err(error) = result {
        tracing::warn!(%error, "could not settle a request; the broker will deliver it again");
    }
}
