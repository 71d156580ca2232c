//! Answering one request, whatever its procedure, as named steps: **admit** (someone to
//! answer, still wanted, a codec the server reads, a body within bounds), **decode**, **run**
//! and **encode** (the procedure's typed part, [`Route::answer`]), **reply** through the
//! request's own handle, and only then **settle**.
//!
//! Everything a request needs is resolved once, when the server is built: each procedure's
//! bounds merged with the server's, its counters, the codecs the server reads.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use fibrpc_ports::{Envelope, IncomingRequest, TransportError};
use futures_util::FutureExt;

use super::answer::{Answer, Failed};
use super::coalesce::Lanes;
use super::recent::RecentCalls;
use super::service::{Expired, Route, Routes};
use super::ServerConfig;
use crate::codec::{truncate_for_display, Codec, BINCODE};
use crate::metrics::{ServerOutcome, UNKNOWN_PROCEDURE};
use crate::Fault;

/// A server procedure's counters, one per outcome.
pub(crate) type ServerProcedureMetrics =
    crate::metrics::ProcedureMetrics<{ ServerOutcome::ALL.len() }>;

/// A procedure as the pipeline runs it, or the stand-in for names the server does not host.
pub(crate) struct Entry {
    pub name: &'static str,
    /// None for the unknown procedure.
    route: Option<Arc<dyn Route>>,
    max_body_bytes: usize,
    expired: Expired,
    /// Not idempotent: repeats are answered from the server's memory of recent calls.
    remembered: bool,
    /// Stopped at the caller's deadline (unless the procedure runs to completion or runs
    /// expired requests anyway).
    cancelled_at_deadline: bool,
    pub metrics: Option<Arc<ServerProcedureMetrics>>,
}

/// Every procedure of a server, resolved for the pipeline.
pub(crate) struct Pipeline {
    named: HashMap<&'static str, Arc<Entry>>,
    unnamed: Option<&'static str>,
    unknown: Arc<Entry>,
    /// Every codec some procedure speaks, and the one for messages without a content type.
    codecs: Vec<Codec>,
    untyped: Codec,
    recent: Arc<RecentCalls>,
    /// Reply addresses with a send in progress, where replies coalesce.
    lanes: Lanes,
}

impl Pipeline {
    pub(crate) fn new(routes: Routes, config: &ServerConfig) -> Self {
        let metrics = config.metrics.as_ref();
        let entry = |name: &'static str, route: Option<Arc<dyn Route>>| {
            let limits = route
                .as_ref()
                .map(|route| route.limits())
                .unwrap_or_default();
            let expired = limits.expired.unwrap_or(config.expired);
            Arc::new(Entry {
                name,
                max_body_bytes: limits.max_body_bytes.unwrap_or(config.max_body_bytes),
                expired,
                remembered: route.as_ref().is_some_and(|route| !route.idempotent()),
                cancelled_at_deadline: expired == Expired::Skip
                    && route
                        .as_ref()
                        .is_some_and(|route| !route.runs_to_completion()),
                metrics: metrics.map(|metrics| Arc::new(metrics.server_procedure(name))),
                route,
            })
        };
        let untyped = routes
            .unnamed
            .and_then(|name| routes.named.get(name))
            .map_or(BINCODE, |route| route.untyped());
        let mut codecs = vec![untyped];
        for route in routes.named.values() {
            for &codec in route.codecs() {
                if !codecs.contains(&codec) {
                    codecs.push(codec);
                }
            }
        }
        Self {
            named: routes
                .named
                .into_iter()
                .map(|(name, route)| (name, entry(name, Some(route))))
                .collect(),
            unnamed: routes.unnamed,
            unknown: entry(UNKNOWN_PROCEDURE, None),
            codecs,
            untyped,
            recent: Arc::default(),
            lanes: Lanes::default(),
        }
    }

    /// The names of the procedures, sorted.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        let mut names: Vec<_> = self.named.keys().copied().collect();
        names.sort_unstable();
        names
    }

    /// The procedure a request names (or the unnamed one's), else the unknown stand-in.
    pub(crate) fn find(&self, procedure: Option<&str>) -> Arc<Entry> {
        procedure
            .or(self.unnamed)
            .and_then(|name| self.named.get(name))
            .unwrap_or(&self.unknown)
            .clone()
    }

    /// Answers `request`, taken from request stream `stream`, with `entry`'s procedure;
    /// says how it ended.
    pub(crate) async fn answer(
        &self,
        entry: &Entry,
        stream: u64,
        mut request: IncomingRequest,
    ) -> ServerOutcome {
        match self.compute(entry, &mut request.envelope).await {
            Ok((reply_to, answer)) => self.reply(stream, request, &reply_to, answer).await,
            Err(outcome) => {
                settle(request.ack().await);
                outcome
            }
        }
    }

    /// Admit, decode, run, encode: the reply address and the answer to the call `envelope`
    /// carries, or how it ends unanswered. The body is taken.
    pub(crate) async fn compute(
        &self,
        entry: &Entry,
        envelope: &mut Envelope,
    ) -> Result<(String, Answer), ServerOutcome> {
        let reply_to = admit(entry, envelope)?;
        // A repeat of a call to a procedure that must not run twice gets the first's answer.
        let first = match self
            .recent
            .recall(
                entry.remembered,
                entry.name,
                envelope.correlation_id.as_deref(),
            )
            .await
        {
            Ok(first) => first,
            Err(stored) => return Ok((reply_to, Arc::unwrap_or_clone(stored))),
        };
        let answer = match self.codec(entry, envelope) {
            Ok(codec) => {
                let body = std::mem::take(&mut envelope.body);
                match run(entry, envelope, codec, body).await {
                    Some(answer) => answer,
                    None => {
                        tracing::debug!(
                            correlation_id = envelope.correlation_id.as_deref(),
                            "stopped at the caller's deadline: acknowledged unanswered"
                        );
                        return Err(ServerOutcome::Cancelled);
                    }
                }
            }
            Err((codec, fault)) => Answer::fault(codec, fault),
        };
        if let Some(first) = first {
            first.store(&answer);
        }
        Ok((reply_to, answer))
    }

    /// Sends `replies` to `reply_to` through `request`'s handle, coalesced with other
    /// replies to the same address ([`Lanes`]).
    pub(crate) async fn send_coalesced(
        &self,
        stream: u64,
        reply_to: &str,
        request: &mut IncomingRequest,
        replies: Vec<Envelope>,
    ) -> Result<(), TransportError> {
        self.lanes.send(stream, reply_to, request, replies).await
    }

    /// Reply, then settle: acknowledged once the reply is sent or cannot be delivered at all,
    /// left for redelivery when the connection is lost. A caller that reads coalesced
    /// replies may get this one with others.
    async fn reply(
        &self,
        stream: u64,
        mut request: IncomingRequest,
        reply_to: &str,
        answer: Answer,
    ) -> ServerOutcome {
        let (reply, outcome) = reply_envelope(request.envelope.correlation_id.take(), answer);
        let correlation_id = reply.correlation_id.clone().unwrap_or_default();
        let sent = if request.envelope.reads_batches {
            self.send_coalesced(stream, reply_to, &mut request, vec![reply])
                .await
        } else {
            request.reply(reply_to, reply).await
        };
        let outcome = after_send(&sent, outcome);
        match sent {
            Ok(()) => {
                settle(request.ack().await);
                tracing::debug!(%correlation_id, "answered");
            }
            Err(error) if error.is_disconnection() => {
                // Left unsettled: the broker hands the request out again once we are back.
                tracing::warn!(%error, %correlation_id, "reply not sent; the request will be redelivered");
            }
            Err(error) => {
                // Retrying would fail the same way; the caller's deadline ends its wait.
                tracing::warn!(%error, %correlation_id, %reply_to, "reply not deliverable; request acknowledged");
                settle(request.ack().await);
            }
        }
        outcome
    }

    /// The request's codec if the server reads it and its body is within bounds; else the
    /// fault to answer with, and the codec to write it in.
    fn codec(&self, entry: &Entry, envelope: &Envelope) -> Result<Codec, (Codec, Fault)> {
        let codec = match envelope.content_type.as_deref() {
            None => self.untyped,
            Some(content_type) => {
                Codec::find(&self.codecs, content_type).map_err(|fault| (self.untyped, fault))?
            }
        };
        if envelope.body.len() > entry.max_body_bytes {
            let fault = Fault::BodyTooLarge {
                size: envelope.body.len() as u64,
                max: entry.max_body_bytes as u64,
            };
            return Err((codec, fault));
        }
        Ok(codec)
    }
}

/// Admit: the request's reply address, unless it has none or is past its deadline (and its
/// procedure skips those): then how it ends, acknowledged unanswered.
fn admit(entry: &Entry, envelope: &mut Envelope) -> Result<String, ServerOutcome> {
    let correlation_id = envelope.correlation_id.as_deref().unwrap_or_default();
    let Some(reply_to) = envelope.reply_to.take() else {
        tracing::warn!(
            correlation_id,
            "request without reply_to: nobody to answer; acknowledged"
        );
        return Err(ServerOutcome::NoReplyTo);
    };
    if entry.expired == Expired::Skip && envelope.is_expired_at(Instant::now()) {
        tracing::debug!(
            correlation_id,
            "request past its deadline: acknowledged unanswered"
        );
        return Err(ServerOutcome::Expired);
    }
    Ok(reply_to)
}

/// Decode, run, encode: the procedure's part, or the unknown procedure's fault. A panic
/// anywhere in it (the handler's above all) is answered as [`Fault::Internal`]: the one
/// place panics are caught. None when stopped at the caller's deadline.
async fn run(entry: &Entry, envelope: &Envelope, codec: Codec, body: Vec<u8>) -> Option<Answer> {
    let Some(route) = &entry.route else {
        // Untrusted: shortened for the reply and the log.
        let name = envelope.procedure.as_deref().map(truncate_for_display);
        return Some(Answer::fault(codec, Fault::UnknownProcedure { name }));
    };
    let answering = AssertUnwindSafe(route.clone().answer(codec, body)).catch_unwind();
    let answered = match envelope.time_left().filter(|_| entry.cancelled_at_deadline) {
        Some(left) => tokio::time::timeout(left, answering).await.ok()?,
        None => answering.await,
    };
    Some(answered.unwrap_or_else(|panic| {
        let reason = panic_reason(&*panic);
        Answer::fault(codec, Fault::Internal { reason })
    }))
}

/// The reply carrying `answer`, and how the call ends if it is delivered; logs an error
/// reply.
pub(crate) fn reply_envelope(
    correlation_id: Option<String>,
    answer: Answer,
) -> (Envelope, ServerOutcome) {
    let outcome = answer.outcome();
    let id = correlation_id.as_deref().unwrap_or_default();
    match &answer.failed {
        Some(Failed::Fault(fault)) => {
            tracing::warn!(correlation_id = %id, %fault, "answering with an error reply");
        }
        Some(Failed::Procedure(error)) => {
            tracing::debug!(correlation_id = %id, %error, "answering with the procedure's error");
        }
        None => {}
    }
    let reply = Envelope {
        correlation_id,
        content_type: Some(answer.codec.content_type().to_owned()),
        error: answer.mark(),
        body: answer.body,
        ..Envelope::default()
    };
    (reply, outcome)
}

/// How a call ends once sending its reply (`answered` if delivered) came to `sent`.
pub(crate) fn after_send(
    sent: &Result<(), TransportError>,
    answered: ServerOutcome,
) -> ServerOutcome {
    match sent {
        Ok(()) => answered,
        Err(error) if error.is_disconnection() => ServerOutcome::Disconnected,
        Err(_) => ServerOutcome::Unroutable,
    }
}

/// A settle that fails means the connection is gone; the broker redelivers, nothing to do.
pub(crate) fn settle(result: Result<(), TransportError>) {
    if let Err(error) = result {
        tracing::warn!(%error, "could not settle a request; the broker will deliver it again");
    }
}

/// What a panic said, for the `Internal` fault that answers it.
fn panic_reason(panic: &(dyn std::any::Any + Send)) -> String {
    let message = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    tracing::error!(panic = message, "a handler panicked");
    format!("the handler panicked: {message}")
}
