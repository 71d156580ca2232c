//! What a transport can tell about a request that gets no answer, and the broker's flow
//! control: the protocol asks only when a call timed out, or follows it for readiness.

/// Whether the broker takes what this transport's connection publishes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Flow {
    #[default]
    Open,
    /// The broker holds back everything the connection publishes (RabbitMQ's
    /// `connection.blocked`, sent on a memory or disk alarm), for the reason it gave.
    /// Nothing is lost: what was published goes out once the broker unblocks it.
    Blocked { reason: String },
}

impl Flow {
    pub fn is_blocked(&self) -> bool {
        matches!(self, Flow::Blocked { .. })
    }
}

/// Follows a transport's [`Flow`]; the adapter sends each change.
pub type FlowWatch = tokio::sync::watch::Receiver<Flow>;

/// Why a request may go unanswered, as the transport sees it now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stall {
    /// No consumer is attached to the request queue: no server takes requests from it.
    #[error("no server consumes the queue {queue:?}")]
    NoConsumer { queue: String },
    /// The broker blocks publishing on this connection.
    #[error("the broker blocks publishing on this connection ({reason})")]
    Blocked { reason: String },
}
