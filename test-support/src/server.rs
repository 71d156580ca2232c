use std::sync::Arc;
use std::time::Duration;

use fibrpc_ports::ReplyTransport;
use fibrpc_rpc::{RpcServer, ServerConfig, ServerHandle, ServerState, ServerStats, Service};

/// How long a graceful stop may take.
const STOP_LIMIT: Duration = Duration::from_secs(20);

/// A server in a task of its own, as a test starts, kills and stops it.
pub struct RunningServer {
    handle: ServerHandle,
    pub stats: Arc<ServerStats>,
}

impl RunningServer {
    /// Serves `service` on `config.queue` over `transport`.
    pub fn start<S: Send + Sync + 'static>(
        transport: Arc<dyn ReplyTransport>,
        config: ServerConfig,
        service: Service<S>,
    ) -> Self {
        let handle = RpcServer::new(transport, config, service).spawn();
        let stats = handle.stats();
        Self { handle, stats }
    }

    /// Waits until the server consumes its queue: over a broker that keeps no queue (core
    /// NATS), a call sent before would find no server.
    ///
    /// # Panics
    /// If the server stops first, or is not consuming within 10 s.
    pub async fn consuming(&self) {
        let mut readiness = self.handle.readiness();
        let state = tokio::time::timeout(
            Duration::from_secs(10),
            readiness.wait_for(|state| state.is_ready() || state == ServerState::Stopped),
        )
        .await
        .expect("the server is not consuming within 10 s");
        assert!(state.is_ready(), "the server stopped before consuming");
    }

    /// Kills the server as a crash would: its task is dropped mid-flight, with whatever
    /// requests it held unsettled.
    pub async fn kill(self) {
        self.handle.kill().await;
    }

    /// Asks for a graceful shutdown and waits for it. The stats it returns are final: a
    /// reply can reach its caller before the server has counted it.
    ///
    /// # Panics
    /// If the server does not stop in time or fails.
    pub async fn stop(self) -> Arc<ServerStats> {
        tokio::time::timeout(STOP_LIMIT, self.handle.stop())
            .await
            .expect("server did not stop in time")
            .expect("server failed");
        self.stats
    }
}
