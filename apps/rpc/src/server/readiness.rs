//! What a server is doing, for health checks: ready while it consumes its request queue and
//! the broker takes its replies; not while it starts, reconnects, drains at shutdown, or the
//! broker blocks publishing (flow control).

use fibrpc_ports::{Flow, FlowWatch};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::watch;

/// The phase a server is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerState {
    /// Not consuming yet.
    Starting,
    /// Consuming the request queue: ready for requests.
    Consuming,
    /// Consuming, but the broker blocks publishing on the connection (RabbitMQ's memory or
    /// disk alarm): replies wait until it unblocks, so new requests would wait too.
    Blocked,
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
            ServerState::Blocked => "blocked",
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
    /// The transport's flow control, where the broker has any.
    flow: Option<FlowWatch>,
}

impl Readiness {
    pub(crate) fn channel(flow: Option<FlowWatch>) -> (watch::Sender<ServerState>, Self) {
        let (sender, state) = watch::channel(ServerState::Starting);
        (sender, Self { state, flow })
    }

    /// The state now.
    pub fn state(&self) -> ServerState {
        let state = *self.state.borrow();
        let blocked = self
            .flow
            .as_ref()
            .is_some_and(|flow| flow.borrow().is_blocked());
        if state == ServerState::Consuming && blocked {
            ServerState::Blocked
        } else {
            state
        }
    }

    pub fn is_ready(&self) -> bool {
        self.state().is_ready()
    }

    /// Why the broker blocks publishing, while it does.
    pub fn blocked_reason(&self) -> Option<String> {
        match &*self.flow.as_ref()?.borrow() {
            Flow::Blocked { reason } => Some(reason.clone()),
            Flow::Open => None,
        }
    }

    /// Waits until the state satisfies `condition` and returns it; `Stopped` if the server is
    /// gone first.
    pub async fn wait_for(&mut self, condition: impl Fn(ServerState) -> bool) -> ServerState {
        loop {
            let state = self.state();
            if condition(state) {
                return state;
            }
            let flow_changed = async {
                match self.flow.as_mut() {
                    Some(flow) => flow.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.state.changed() => if changed.is_err() {
                    return ServerState::Stopped;
                },
                open = flow_changed => if !open {
                    // The transport is gone: its flow no longer says anything.
                    self.flow = None;
                },
            }
        }
    }
}

/// Logs and counts each time the broker blocks and unblocks the server's connection, until
/// dropped. One line each way: the reason is what an operator needs to read.
pub(crate) fn follow_flow(
    flow: Option<FlowWatch>,
    blocked: Option<Counter>,
) -> Option<FlowFollower> {
    let mut flow = flow?;
    let task = tokio::spawn(async move {
        let mut was_blocked = false;
        loop {
            let now = flow.borrow_and_update().clone();
            match now {
                Flow::Blocked { reason } if !was_blocked => {
                    was_blocked = true;
                    if let Some(blocked) = &blocked {
                        blocked.inc();
                    }
                    tracing::warn!(%reason, "the broker blocks publishing: replies wait until it unblocks");
                }
                Flow::Open if was_blocked => {
                    was_blocked = false;
                    tracing::info!("the broker unblocked publishing");
                }
                _ => {}
            }
            if flow.changed().await.is_err() {
                return;
            }
        }
    });
    Some(FlowFollower(task))
}

/// Stops following the flow when dropped (the server stopped).
pub(crate) struct FlowFollower(tokio::task::JoinHandle<()>);

impl Drop for FlowFollower {
    fn drop(&mut self) {
        self.0.abort();
    }
}
