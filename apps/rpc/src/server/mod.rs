//! The RPC server: consumes the request queue and answers every request it can, each with the
//! procedure it names.

mod handle;
mod handler;
mod service;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fibrpc_ports::{IncomingRequest, ReplyTransport, RequestStream};
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};

pub use self::handle::ServerHandle;
use self::handler::Replier;
pub use self::service::{Expired, Limits, Service};
use self::service::{Handling, Routes};
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
}

impl ServerStats {
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    pub fn error_replies(&self) -> u64 {
        self.error_replies.load(Ordering::Relaxed)
    }
}

pub struct RpcServer {
    transport: Arc<dyn ReplyTransport>,
    config: ServerConfig,
    routes: Routes,
    stats: Arc<ServerStats>,
}

impl RpcServer {
    /// A server of `service`'s procedures on `config.queue`.
    pub fn new<S: Send + Sync + 'static>(
        transport: Arc<dyn ReplyTransport>,
        config: ServerConfig,
        service: Service<S>,
    ) -> Self {
        Self {
            transport,
            config,
            routes: service.into_routes(),
            stats: Arc::default(),
        }
    }

    pub fn stats(&self) -> Arc<ServerStats> {
        self.stats.clone()
    }

    /// Serves until `shutdown` completes, then stops taking requests, finishes and settles
    /// those in flight, and returns. A lost connection is reopened with backoff; only a
    /// failure to start consuming at all is returned as an error.
    pub async fn run(&self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        tokio::pin!(shutdown);
        let config = &self.config;
        let mut requests = self
            .transport
            .consume_requests(&config.queue, config.prefetch)
            .await
            .map_err(ServerError::Start)?;
        tracing::info!(queue = %config.queue, prefetch = config.prefetch, concurrency = config.concurrency, procedures = ?self.routes.names(), "awaiting RPC requests");
        let replier = Arc::new(Replier::new(
            self.transport.clone(),
            config.max_body_bytes,
            config.expired,
            self.stats.clone(),
        ));
        // Requests in flight are futures of this one task, not tasks of their own: their
        // wake-ups (a reply written, an ack written) land on one task and coalesce, and no
        // request costs a spawn. A handler must not block (fib moves large n to the blocking
        // pool); a panic in one is answered as a fault (see `Service`).
        let mut in_flight = FuturesUnordered::new();
        let concurrency = config.concurrency.max(1);
        loop {
            // Finished requests first, so that their slots are free before taking more.
            let next = tokio::select! {
                biased;
                () = &mut shutdown => break,
                Some(()) = in_flight.next(), if !in_flight.is_empty() => continue,
                next = requests.next_request(), if in_flight.len() < concurrency => next,
            };
            match next {
                Ok(request) => in_flight.push(self.handle(&replier, request)),
                Err(error) => {
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
                        Some(reopened) => requests = reopened,
                        None => break,
                    }
                }
            }
        }
        tracing::info!(
            in_flight = in_flight.len(),
            "shutting down: finishing requests in flight"
        );
        if let Err(error) = requests.cancel().await {
            tracing::debug!(%error, "cancelling the consumer");
        }
        while in_flight.next().await.is_some() {}
        drop(requests);
        tracing::info!("server stopped");
        Ok(())
    }

    /// The future that answers `request`, by its procedure's route or as unknown.
    fn handle(&self, replier: &Arc<Replier>, request: IncomingRequest) -> Handling {
        let handling = match self.routes.find(request.envelope.procedure.as_deref()) {
            Some(route) => route.clone().handle(replier.clone(), request),
            None => {
                let replier = replier.clone();
                Box::pin(async move { replier.unknown_procedure(request).await })
            }
        };
        // Handlers' panics are caught where they run; this guards the server loop against
        // one anywhere else in answering a request.
        Box::pin(AssertUnwindSafe(handling).catch_unwind().map(|outcome| {
            if outcome.is_err() {
                tracing::error!("answering a request panicked; it will be delivered again");
            }
        }))
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
    in_flight: &mut FuturesUnordered<Handling>,
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

#[cfg(test)]
mod tests;
