use std::time::Duration;

use fibrpc_ports::{Stall, TransportError};

/// Why a call returned no response. `E` is the procedure's own error type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError<E> {
    /// The procedure answered with its own error (for fib: n above the server's bound).
    #[error("the server refused the call: {0}")]
    Remote(E),
    /// The server answered with an error of its own, whatever the procedure: unknown
    /// procedure, unreadable or oversized request, a handler that panicked.
    #[error("the server refused the call: {0}")]
    Fault(#[from] Fault),
    /// No reply came before the call's deadline; with what the client saw, when it knows.
    #[error("{0}")]
    Timeout(TimedOut),
    /// The transport failed the call (lost connection, no such queue, ...).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The request could not be encoded (its `Serialize` implementation failed); not sent.
    #[error("cannot encode the request: {reason}")]
    BadRequest { reason: String },
    /// A reply came but could not be read.
    #[error("unreadable reply: {reason}")]
    BadReply { reason: String },
}

impl<E> CallError<E> {
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

    /// The same error with the procedure's error mapped by `f`, to handle the errors of
    /// several procedures as one type.
    pub fn map_remote<F>(self, f: impl FnOnce(E) -> F) -> CallError<F> {
        match self {
            CallError::Remote(error) => CallError::Remote(f(error)),
            CallError::Fault(fault) => CallError::Fault(fault),
            CallError::Timeout(timeout) => CallError::Timeout(timeout),
            CallError::Transport(error) => CallError::Transport(error),
            CallError::BadRequest { reason } => CallError::BadRequest { reason },
            CallError::BadReply { reason } => CallError::BadReply { reason },
        }
    }
}

/// A call that got no reply within `after`, and why, as far as the client could see when it
/// gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOut {
    pub after: Duration,
    pub seen: Option<Unanswered>,
}

impl TimedOut {
    /// A timeout with nothing seen.
    pub fn after(after: Duration) -> Self {
        Self { after, seen: None }
    }
}

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no reply within {:?}", self.after)?;
        match &self.seen {
            Some(seen) => write!(f, ": {seen}"),
            None => Ok(()),
        }
    }
}

/// What a client saw of a call that timed out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unanswered {
    /// The transport's view: no consumer on the queue, a connection the broker blocks.
    #[error(transparent)]
    Stalled(#[from] Stall),
    /// The client's reply address was lost and not yet open again, so the call could not
    /// be sent (or its reply could not come back).
    #[error("the client's reply address was lost and is not open again yet")]
    ReplyAddressLost,
}

/// An error the server answers with by itself, whatever the procedure: it travels in the reply
/// like the procedure's own errors, and reaches the caller as [`CallError::Fault`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// The server hosts no procedure of that name (`None`: the request named none, and the
    /// server has no unnamed procedure).
    #[error("{}", unknown_procedure(.name.as_deref()))]
    UnknownProcedure { name: Option<String> },
    /// The request body could not be read as the procedure's request.
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    /// The request named a content type the procedure does not speak.
    #[error("unsupported content type {content_type:?}")]
    UnsupportedContentType { content_type: String },
    /// The request body is larger than the server (or the procedure) accepts.
    #[error("request body of {size} bytes exceeds the limit of {max} bytes")]
    BodyTooLarge { size: u64, max: u64 },
    /// The server failed in a way that is not the request's fault (a handler panicked, a
    /// reply could not be encoded).
    #[error("internal server error: {reason}")]
    Internal { reason: String },
}

fn unknown_procedure(name: Option<&str>) -> String {
    match name {
        Some(name) => format!("no procedure named {name:?} on this server"),
        None => "this server has no procedure for requests that name none".to_owned(),
    }
}

impl Fault {
    /// A stable, short name for the kind of fault (in text replies and logs).
    pub fn code(&self) -> &'static str {
        match self {
            Fault::UnknownProcedure { .. } => "unknown-procedure",
            Fault::InvalidRequest { .. } => "invalid-request",
            Fault::UnsupportedContentType { .. } => "unsupported-content-type",
            Fault::BodyTooLarge { .. } => "body-too-large",
            Fault::Internal { .. } => "internal",
        }
    }

    pub fn invalid(reason: impl Into<String>) -> Self {
        Fault::InvalidRequest {
            reason: reason.into(),
        }
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
    /// The server stopped before it consumed its request queue.
    #[error("the server stopped before it was ready")]
    StoppedBeforeReady,
}
