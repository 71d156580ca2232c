//! Answers one request, whatever its procedure: checks what every request must pass, lets the
//! procedure answer, replies, and only then acknowledges.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use fibrpc_ports::{Envelope, IncomingRequest, ReplyTransport, TransportError};

use super::service::{Expired, Limits};
use crate::codec::{truncate_for_display, Codec};
use crate::metrics::ServerOutcome;
use crate::Fault;

/// A reply body and its codec, and the error it carries, if any.
pub(crate) struct Answer {
    pub codec: Codec,
    pub body: Vec<u8>,
    pub failed: Option<Failed>,
}

/// The error an answer carries, for the log.
pub(crate) enum Failed {
    /// The procedure's own error: the procedure's business, logged at debug level.
    Procedure(String),
    /// The server's own: the request's fault or the server's, logged as a warning.
    Fault(Fault),
}

impl Answer {
    pub(crate) fn fault(codec: Codec, fault: Fault) -> Self {
        Self {
            codec,
            body: codec.encode_fault(&fault),
            failed: Some(Failed::Fault(fault)),
        }
    }
}

/// The part of answering that is the same for every procedure.
pub(crate) struct Replier {
    transport: Arc<dyn ReplyTransport>,
    /// The server's bounds, for procedures that set none of their own.
    max_body_bytes: usize,
    expired: Expired,
}

impl Replier {
    pub(super) fn new(
        transport: Arc<dyn ReplyTransport>,
        max_body_bytes: usize,
        expired: Expired,
    ) -> Self {
        Self {
            transport,
            max_body_bytes,
            expired,
        }
    }

    /// Answers `request` with what `answer` makes of its body, unless the request is past its
    /// deadline, has nobody to answer, or fails the checks every request must pass; says how
    /// it ended.
    pub(crate) async fn handle<F, Fut>(
        &self,
        mut request: IncomingRequest,
        limits: &Limits,
        answer: F,
    ) -> ServerOutcome
    where
        F: FnOnce(Codec, Vec<u8>) -> Fut,
        Fut: Future<Output = Answer>,
    {
        let envelope = &mut request.envelope;
        let Some(reply_to) = envelope.reply_to.take() else {
            tracing::warn!(
                correlation_id = envelope.correlation_id.as_deref().unwrap_or_default(),
                "request without reply_to: nobody to answer; acknowledged"
            );
            settle(request.ack().await);
            return ServerOutcome::NoReplyTo;
        };
        let expired = limits.expired.unwrap_or(self.expired) == Expired::Skip
            && envelope.is_expired_at(Instant::now());
        if expired {
            tracing::debug!(
                correlation_id = envelope.correlation_id.as_deref().unwrap_or_default(),
                "request past its deadline: acknowledged unanswered"
            );
            settle(request.ack().await);
            return ServerOutcome::Expired;
        }

        let answer = match self.admit(envelope, limits) {
            Ok(codec) => answer(codec, std::mem::take(&mut envelope.body)).await,
            Err((codec, fault)) => Answer::fault(codec, fault),
        };
        let correlation_id = request.envelope.correlation_id.take();
        let reply = Envelope {
            correlation_id: correlation_id.clone(),
            content_type: Some(answer.codec.content_type().to_owned()),
            body: answer.body,
            ..Envelope::default()
        };
        let correlation_id = correlation_id.unwrap_or_default();
        match &answer.failed {
            Some(Failed::Fault(fault)) => {
                tracing::warn!(%correlation_id, %fault, "answering with an error reply");
            }
            Some(Failed::Procedure(error)) => {
                tracing::debug!(%correlation_id, %error, "answering with the procedure's error");
            }
            None => {}
        }
        match request
            .send_reply(self.transport.as_ref(), &reply_to, reply)
            .await
        {
            Ok(()) => {
                settle(request.ack().await);
                tracing::debug!(%correlation_id, "answered");
                match answer.failed {
                    None => ServerOutcome::Ok,
                    Some(Failed::Procedure(_)) => ServerOutcome::Error,
                    Some(Failed::Fault(_)) => ServerOutcome::Fault,
                }
            }
            Err(error) if error.is_disconnection() => {
                // Left unsettled: the broker hands the request out again once we are back.
                tracing::warn!(%error, %correlation_id, "reply not sent; the request will be redelivered");
                ServerOutcome::Disconnected
            }
            Err(error) => {
                // Retrying would fail the same way; the caller's deadline ends its wait.
                tracing::warn!(%error, %correlation_id, %reply_to, "reply not deliverable; request acknowledged");
                settle(request.ack().await);
                ServerOutcome::Unroutable
            }
        }
    }

    /// The request's codec if it is one the server reads and its body is within bounds; else
    /// the fault to answer with, and the codec to write it in.
    fn admit(&self, envelope: &Envelope, limits: &Limits) -> Result<Codec, (Codec, Fault)> {
        let codec = Codec::for_content_type(envelope.content_type.as_deref())
            .map_err(|fault| (Codec::Text, fault))?;
        let max = limits.max_body_bytes.unwrap_or(self.max_body_bytes);
        if envelope.body.len() > max {
            let fault = Fault::BodyTooLarge {
                size: envelope.body.len() as u64,
                max: max as u64,
            };
            return Err((codec, fault));
        }
        Ok(codec)
    }

    /// Answers a request for a procedure the server does not host.
    pub(crate) async fn unknown_procedure(&self, request: IncomingRequest) -> ServerOutcome {
        // Untrusted: shortened for the reply and the log.
        let name = request
            .envelope
            .procedure
            .as_deref()
            .map(truncate_for_display);
        let answer =
            |codec, _| async move { Answer::fault(codec, Fault::UnknownProcedure { name }) };
        self.handle(request, &Limits::default(), answer).await
    }
}

/// A settle that fails means the connection is gone; the broker redelivers, nothing to do.
fn settle(result: Result<(), TransportError>) {
    if let Err(error) = result {
        tracing::warn!(%error, "could not settle a request; the broker will deliver it again");
    }
}
