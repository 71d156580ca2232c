use std::time::Duration;

use fibrpc_domain::DomainError;
use fibrpc_ports::TransportError;

/// Why a call returned no Fibonacci number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The server answered, with an error (n above its bound, a request it could not read, ...).
    #[error("the server refused the call: {0}")]
    Remote(#[from] DomainError),
    /// No reply came before the call's deadline.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The transport failed the call (lost connection, no such queue, ...).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// A reply came but could not be read.
    #[error("unreadable reply: {reason}")]
    BadReply { reason: String },
}

impl CallError {
    /// True for failures after which sending the same call again may succeed.
    ///
    /// A missing queue counts: after a broker restart a non-durable request queue is gone
    /// until its servers reconnect and declare it again.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CallError::Transport(
                TransportError::Disconnected { .. }
                    | TransportError::Timeout { .. }
                    | TransportError::NoSuchQueue { .. }
            )
        )
    }
}

/// Why a server stopped other than by its shutdown signal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error("cannot start consuming requests: {0}")]
    Start(TransportError),
    /// The task running the server failed (a panic).
    #[error("the server task failed: {reason}")]
    Task { reason: String },
}
