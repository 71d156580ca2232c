//! A server running in a task of its own, for programs that serve and do other things.

use std::sync::Arc;

use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{Readiness, RpcServer, ServerStats};
use crate::ServerError;

pub struct ServerHandle {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), ServerError>>,
    stats: Arc<ServerStats>,
    readiness: Readiness,
}

impl RpcServer {
    /// Runs the server in a task of its own until [`ServerHandle::stop`].
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

    /// Shuts down gracefully (requests in flight are finished and settled) and waits for it.
    pub async fn stop(self) -> Result<(), ServerError> {
        let _ = self.stop.send(());
        self.task.await.map_err(|error| ServerError::Task {
            reason: error.to_string(),
        })?
    }

    /// Ends the server as a crash would: its task is dropped mid-flight, with whatever
    /// requests it held unsettled (the transport delivers them again).
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}
