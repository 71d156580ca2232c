//! The RPC server: consumes the request queue and answers every request it can, each with the
//! procedure it names.

mod handle;
mod handler;
mod service;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fibrpc_ports::{ReplyTransport, RequestStream, TransportError};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub use self::handle::ServerHandle;
use self::handler::Replier;
use self::service::Routes;
pub use self::service::{Expired, Limits, Service};
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
        let slots = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let mut in_flight = JoinSet::new();
        loop {
            while in_flight.try_join_next().is_some() {}
            let slot = tokio::select! {
                biased;
                () = &mut shutdown => break,
                slot = slots.clone().acquire_owned() => slot.map_err(|_| ServerError::Start(TransportError::Cancelled))?,
            };
            let next = tokio::select! {
                biased;
                () = &mut shutdown => break,
                next = requests.next_request() => next,
            };
            match next {
                Ok(request) => match self.routes.find(request.envelope.procedure.as_deref()) {
                    Some(route) => {
                        route
                            .clone()
                            .spawn(&mut in_flight, replier.clone(), request, slot)
                    }
                    None => {
                        let replier = replier.clone();
                        in_flight.spawn(async move {
                            replier.unknown_procedure(request).await;
                            drop(slot);
                        });
                    }
                },
                Err(error) => {
                    tracing::warn!(%error, "request stream ended; consuming again");
                    tokio::select! {
                        () = &mut shutdown => break,
                        reopened = self.consume_again() => requests = reopened,
                    }
                }
            }
        }
        // The set still holds tasks that finished since the last reap: count only the others.
        while in_flight.try_join_next().is_some() {}
        tracing::info!(
            in_flight = in_flight.len(),
            "shutting down: finishing requests in flight"
        );
        if let Err(error) = requests.cancel().await {
            tracing::debug!(%error, "cancelling the consumer");
        }
        while in_flight.join_next().await.is_some() {}
        drop(requests);
        tracing::info!("server stopped");
        Ok(())
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

#[cfg(test)]
mod tests;
