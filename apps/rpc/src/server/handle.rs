//! A server running in a task of its own, for programs that serve and do other things.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Readiness, RpcServer, ServerState, ServerStats};
use crate::ServerError;

pub struct ServerHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServerError>>,
    /// The task's outcome, once [`ready`](Self::ready) has seen it end.
    ended: Option<Result<(), ServerError>>,
    stats: Arc<ServerStats>,
    readiness: Readiness,
}

impl RpcServer {
    /// Runs the server in a task of its own until [`ServerHandle::stop`]. It starts
    /// consuming in that task: [`ServerHandle::ready`] waits for it.
    pub fn spawn(self) -> ServerHandle {
        let stats = self.stats();
        let readiness = self.readiness();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            self.run(async {
                let _ = stopped.await;
            })
            .await
        });
        ServerHandle {
            stop,
            task,
            ended: None,
            stats,
            readiness,
        }
    }
}

impl ServerHandle {
    pub fn stats(&self) -> Arc<ServerStats> {
        self.stats.clone()
    }

    pub fn readiness(&self) -> Readiness {
        self.readiness.clone()
    }

    /// Waits until the server consumes its request queue (the adapter has made sure it
    /// exists): a call sent from now on is taken.
    ///
    /// # Errors
    /// The server's own error if it stopped first ([`ServerError::Start`] when it could not
    /// consume the queue), as [`stop`](Self::stop) would return it.
    pub async fn ready(&mut self) -> Result<(), ServerError> {
        let mut readiness = self.readiness.clone();
        let state = readiness
            .wait_for(|state| {
                matches!(
                    state,
                    ServerState::Consuming | ServerState::Blocked | ServerState::Stopped
                )
            })
            .await;
        if state != ServerState::Stopped {
            return Ok(());
        }
        let ended = match self.ended.take() {
            Some(ended) => ended,
            None => joined(&mut self.task).await,
        };
        self.ended = Some(ended.clone());
        ended.and(Err(ServerError::StoppedBeforeReady))
    }

    /// Shuts down gracefully (requests in flight are finished and settled) and waits for it.
    pub async fn stop(mut self) -> Result<(), ServerError> {
        if let Some(ended) = self.ended.take() {
            return ended;
        }
        let _ = self.stop.send(());
        joined(&mut self.task).await
    }

    /// Ends the server as a crash would: its task is dropped mid-flight, with whatever
    /// requests it held unsettled (the transport delivers them again).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

async fn joined(task: &mut JoinHandle<Result<(), ServerError>>) -> Result<(), ServerError> {
    task.await.map_err(|error| ServerError::Task {
        reason: error.to_string(),
    })?
}

#[cfg(test)]
mod tests {
    use fibrpc_in_memory::InMemoryBroker;
    use fibrpc_ports::{MockReplyTransport, TransportError};

    use super::*;
    use crate::testing::Echo;
    use crate::{ServerConfig, Service};

    #[tokio::test]
    async fn ready_waits_until_the_queue_is_consumed() {
        let broker = InMemoryBroker::new();
        let transport = Arc::new(broker.connect());
        let service = Service::new(()).register(Echo, |_, text| async move { Ok(text) });
        let mut server = RpcServer::new(transport, ServerConfig::default(), service).spawn();
        server.ready().await.unwrap();
        assert!(server.readiness().is_ready());
        assert_eq!(broker.queue_depth(&ServerConfig::default().queue), Some(0));
        server.stop().await.unwrap();
    }

    #[tokio::test]
    async fn ready_fails_with_the_servers_error_when_it_cannot_start() {
        let refused = TransportError::Refused {
            reason: "no permission".into(),
        };
        let mut transport = MockReplyTransport::new();
        transport.expect_flow().return_const(None);
        transport.expect_announce_procedures().return_const(());
        transport.expect_consume_requests().returning({
            let refused = refused.clone();
            move |_, _| Err(refused.clone())
        });
        let service = Service::new(()).register(Echo, |_, text| async move { Ok(text) });
        let mut server =
            RpcServer::new(Arc::new(transport), ServerConfig::default(), service).spawn();
        assert_eq!(
            server.ready().await,
            Err(ServerError::Start(refused.clone()))
        );
        // The same again, and from stop.
        assert_eq!(
            server.ready().await,
            Err(ServerError::Start(refused.clone()))
        );
        assert_eq!(server.stop().await, Err(ServerError::Start(refused)));
    }
}
