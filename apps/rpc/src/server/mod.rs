//! The RPC server: consumes the request queue and answers every request it can, each with the
//! procedure it names.

mod answer;
mod coalesce;
mod counted;
mod handle;
mod pipeline;
mod readiness;
mod recent;
mod service;
mod unbatch;

#[cfg(test)]
mod cancel_tests;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fibrpc_ports::{IncomingRequest, ReplyTransport, RequestStream};
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;
use tracing::Instrument;

use self::counted::Counted;
pub use self::handle::ServerHandle;
use self::pipeline::Pipeline;
pub use self::readiness::{Readiness, ServerState};
pub use self::service::{Expired, Limits, Service};
use crate::batch::frame;
use crate::metrics::{Metrics, ServerOutcome};
use crate::{Backoff, ServerError};

#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub queue: String,
    /// Requests the broker may hand this server before it settles any.
    pub prefetch: u16,
    /// Requests handled at once, all procedures together.
    pub concurrency: usize,
    /// Largest request body read; larger ones get a `BodyTooLarge` error reply. A procedure
    /// may set its own ([`Limits`]).
    pub max_body_bytes: usize,
    /// What happens to a request taken after its caller's deadline. A procedure may set its
    /// own.
    pub expired: Expired,
    /// How the server waits between attempts to consume again after a lost connection.
    pub reconnect: Backoff,
    /// Where the server counts its requests, if anywhere ([`crate::metrics`]).
    pub metrics: Option<Metrics>,
    /// Each request answered in a span that continues its caller's trace (on by default).
    /// Off, there is no span (log lines about a request carry no `trace_id`, an exporter sees
    /// nothing of it) and a handler's own calls start traces of their own.
    pub trace: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            queue: "rpc_queue".to_owned(),
            prefetch: 64,
            concurrency: 64,
            max_body_bytes: 64 * 1024,
            expired: Expired::Skip,
            reconnect: Backoff::default(),
            metrics: None,
            trace: true,
        }
    }
}

/// What a server has done so far, for tests and monitoring.
#[derive(Debug, Default)]
pub struct ServerStats {
    pub answered: AtomicU64,
    pub error_replies: AtomicU64,
    /// Requests with no `reply_to`: acknowledged, nobody to answer.
    pub without_reply_to: AtomicU64,
    /// Requests whose deadline had passed when taken: acknowledged unanswered.
    pub expired: AtomicU64,
    /// Replies the broker could not route (the caller's reply address was gone).
    pub unroutable_replies: AtomicU64,
    pub reconnects: AtomicU64,
    /// Requests stopped at their caller's deadline while running: acknowledged unanswered.
    pub cancelled: AtomicU64,
}

impl ServerStats {
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    pub fn error_replies(&self) -> u64 {
        self.error_replies.load(Ordering::Relaxed)
    }

    fn record(&self, outcome: ServerOutcome) {
        let counter = match outcome {
            ServerOutcome::Ok => &self.answered,
            ServerOutcome::Error | ServerOutcome::Fault => &self.error_replies,
            ServerOutcome::Expired => &self.expired,
            ServerOutcome::NoReplyTo => &self.without_reply_to,
            ServerOutcome::Unroutable => &self.unroutable_replies,
            ServerOutcome::Cancelled => &self.cancelled,
            ServerOutcome::Disconnected | ServerOutcome::Internal => return,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// One request being answered, counted, in its trace: as the server loop holds it.
type Answering = Pin<Box<dyn Future<Output = ()> + Send>>;

pub struct RpcServer {
    transport: Arc<dyn ReplyTransport>,
    config: ServerConfig,
    pipeline: Arc<Pipeline>,
    stats: Arc<ServerStats>,
    state: watch::Sender<ServerState>,
    readiness: Readiness,
    reconnects: Option<Counter>,
}

impl RpcServer {
    /// A server of `service`'s procedures on `config.queue`.
    pub fn new<S: Send + Sync + 'static>(
        transport: Arc<dyn ReplyTransport>,
        config: ServerConfig,
        service: Service<S>,
    ) -> Self {
        let pipeline = Arc::new(Pipeline::new(service.into_routes(), &config));
        let reconnects = config
            .metrics
            .as_ref()
            .map(|metrics| metrics.reconnects("server"));
        let (state, readiness) = Readiness::channel(transport.flow());
        Self {
            transport,
            config,
            pipeline,
            stats: Arc::default(),
            state,
            readiness,
            reconnects,
        }
    }

    pub fn stats(&self) -> Arc<ServerStats> {
        self.stats.clone()
    }

    /// Follows what the server does: ready while it consumes its request queue.
    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Serves until `shutdown` completes, then stops taking requests, finishes and settles
    /// those in flight, and returns. A lost connection is reopened with backoff; only a
    /// failure to start consuming at all is returned as an error.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        tokio::pin!(shutdown);
        let config = &self.config;
        // Before consuming: an adapter may serve each procedure on an address of its own.
        self.transport
            .announce_procedures(&config.queue, &self.pipeline.names());
        let mut requests = match self
            .transport
            .consume_requests(&config.queue, config.prefetch)
            .await
        {
            Ok(requests) => requests,
            Err(error) => {
                self.state.send_replace(ServerState::Stopped);
                return Err(ServerError::Start(error));
            }
        };
        self.state.send_replace(ServerState::Consuming);
        let _flow = readiness::follow_flow(
            self.transport.flow(),
            config.metrics.as_ref().map(Metrics::broker_blocked),
        );
        tracing::info!(queue = %config.queue, prefetch = config.prefetch, concurrency = config.concurrency, procedures = ?self.pipeline.names(), "awaiting RPC requests");
        // Requests in flight are futures of this one task, not tasks of their own: their
        // wake-ups (a reply written, an ack written) land on one task and coalesce, and no
        // request costs a spawn. A handler must not block (fib moves large n to the blocking
        // pool); a panic in one is answered as a fault (see `pipeline`).
        let mut in_flight = FuturesUnordered::new();
        let concurrency = config.concurrency.max(1);
        // Which request stream a request came from: replies coalesce only among requests of
        // one stream (see `coalesce`).
        let mut stream = 0;
        loop {
            // Finished requests first, so that their slots are free before taking more.
            let next = tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(()) = in_flight.next(), if !in_flight.is_empty() => continue,
                next = requests.next_request(), if in_flight.len() < concurrency => next,
            };
            match next {
                Ok(request) => in_flight.push(self.handle(stream, request)),
                Err(error) => {
                    self.state.send_replace(ServerState::Reconnecting);
                    tracing::warn!(%error, "request stream ended; consuming again");
                    let reopened = async {
                        tokio::select! {
                            () = &mut shutdown => None,
                            reopened = self.consume_again() => Some(reopened),
                        }
                    };
                    // Requests in flight go on meanwhile: their replies and acks may still
                    // get through, or fail and be delivered again.
                    let reopened = drive_while(&mut in_flight, reopened).await;
                    match reopened {
                        Some(reopened) => {
                            requests = reopened;
                            stream += 1;
                            self.state.send_replace(ServerState::Consuming);
                        }
                        None => break,
                    }
                }
            }
        }
        self.state.send_replace(ServerState::Draining);
        tracing::info!(
            in_flight = in_flight.len(),
            "shutting down: finishing requests in flight"
        );
        if let Err(error) = requests.cancel().await {
            tracing::debug!(%error, "cancelling the consumer");
        }
        while in_flight.next().await.is_some() {}
        drop(requests);
        self.state.send_replace(ServerState::Stopped);
        tracing::info!("server stopped");
        Ok(())
    }

    /// The future that answers `request`, taken from request stream `stream`, through the
    /// pipeline, in the trace its caller sent, counting how it ended; or each call of a
    /// batch so.
    fn handle(&self, stream: u64, request: IncomingRequest) -> Answering {
        if frame::is_batch(&request.envelope) {
            let batch = unbatch::Batch {
                pipeline: self.pipeline.clone(),
                stats: self.stats.clone(),
                queue: self.config.queue.clone(),
                messaging_system: self.transport.messaging_system(),
                stream,
                traced: self.config.trace,
            };
            return Box::pin(batch.answer(request));
        }
        let pipeline = self.pipeline.clone();
        let entry = pipeline.find(request.envelope.procedure.as_deref());
        let counted = Counted::start(
            &entry,
            &self.config.queue,
            || self.transport.messaging_system(),
            &request.envelope,
            self.stats.clone(),
            self.config.trace,
        );
        let span = counted.trace.span.clone();
        let answering = async move {
            let answering = pipeline.answer(&entry, stream, request);
            let outcome = counted.scope(answering).await;
            counted.finish(outcome);
        };
        Box::pin(answering.instrument(span))
    }

    async fn consume_again(&self) -> Box<dyn RequestStream> {
        let mut attempt = 0;
        loop {
            tokio::time::sleep(self.config.reconnect.delay(attempt)).await;
            match self
                .transport
                .consume_requests(&self.config.queue, self.config.prefetch)
                .await
            {
                Ok(requests) => {
                    self.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                    if let Some(reconnects) = &self.reconnects {
                        reconnects.inc();
                    }
                    tracing::info!(queue = %self.config.queue, "consuming again");
                    return requests;
                }
                Err(error) => {
                    tracing::warn!(%error, attempt, "cannot consume yet");
                    attempt = attempt.saturating_add(1);
                }
            }
        }
    }
}

/// Runs `until` to its end while driving the requests in flight.
async fn drive_while<T>(
    in_flight: &mut FuturesUnordered<Answering>,
    until: impl Future<Output = T>,
) -> T {
    tokio::pin!(until);
    loop {
        tokio::select! {
            biased;
            done = &mut until => return done,
            Some(()) = in_flight.next(), if !in_flight.is_empty() => {}
        }
    }
}
