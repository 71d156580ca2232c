//! What a server is doing, for health checks: ready while it consumes its request queue, not
//! while it starts, reconnects or drains at shutdown.

use tokio::sync::watch;

/// The phase a server is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Not consuming yet.
    Starting,
    /// Consuming the request queue: ready for requests.
    Consuming,
    /// The connection was lost; consuming again, with backoff.
    Reconnecting,
    /// Shutting down: takes no more requests, finishes those in flight.
    Draining,
    /// Done (or failed to start).
    Stopped,
}

impl ServerState {
    pub fn is_ready(self) -> bool {
        self == ServerState::Consuming
    }

    /// A short lowercase name, for a health endpoint's body.
    pub fn name(self) -> &'static str {
        match self {
            ServerState::Starting => "starting",
            ServerState::Consuming => "consuming",
            ServerState::Reconnecting => "reconnecting",
            ServerState::Draining => "draining",
            ServerState::Stopped => "stopped",
        }
    }
}

/// Watches a server's [`ServerState`]; cheap to clone, usable from any task.
#[derive(Debug, Clone)]
pub struct Readiness {
    state: watch::Receiver<ServerState>,
}

impl Readiness {
    pub(crate) fn channel() -> (watch::Sender<ServerState>, Self) {
        let (sender, state) = watch::channel(ServerState::Starting);
        (sender, Self { state })
    }

    /// The state now.
    pub fn state(&self) -> ServerState {
        *self.state.borrow()
    }

    pub fn is_ready(&self) -> bool {
        self.state().is_ready()
    }

    /// Waits until the state satisfies `condition` and returns it; `Stopped` if the server is
    /// gone first.
    pub async fn wait_for(&mut self, condition: impl Fn(ServerState) -> bool) -> ServerState {
        match self.state.wait_for(|state| condition(*state)).await {
            Ok(state) => *state,
            Err(_) => ServerState::Stopped,
        }
    }
}
