//! How a request or a call ended: the `outcome` label, a small closed set.

use fibrpc_ports::TransportError;

use crate::CallError;

/// How the server finished with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerOutcome {
    /// Answered with the procedure's response.
    Ok,
    /// Answered with the procedure's own error.
    Error,
    /// Answered with a fault of the server's: unknown procedure, unreadable or too large a
    /// request, a handler that panicked.
    Fault,
    /// Taken after its deadline: acknowledged unanswered.
    Expired,
    /// No reply address: acknowledged unanswered.
    NoReplyTo,
    /// The reply could not be routed (the caller's address is gone): acknowledged.
    Unroutable,
    /// The reply could not be sent for a lost connection: left for the broker to deliver
    /// again.
    Disconnected,
    /// Answering failed in the server itself (a panic outside the handler): left unsettled.
    Internal,
    /// Stopped at its caller's deadline while running (nobody waits for the reply any
    /// more): acknowledged unanswered.
    Cancelled,
}

impl ServerOutcome {
    pub(crate) const ALL: [Self; 9] = [
        Self::Ok,
        Self::Error,
        Self::Fault,
        Self::Expired,
        Self::NoReplyTo,
        Self::Unroutable,
        Self::Disconnected,
        Self::Internal,
        Self::Cancelled,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Error => "error",
            Self::Fault => "fault",
            Self::Expired => "expired",
            Self::NoReplyTo => "no_reply_to",
            Self::Unroutable => "unroutable",
            Self::Disconnected => "disconnected",
            Self::Internal => "internal",
            Self::Cancelled => "cancelled",
        }
    }
}

/// How a call ended, as its caller saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallOutcome {
    Ok,
    /// The procedure's own error ([`CallError::Remote`]).
    RemoteError,
    /// The server's fault ([`CallError::Fault`]).
    Fault,
    /// No reply before the deadline.
    Timeout,
    /// No queue took the request (none by that name).
    Unroutable,
    /// The connection was lost.
    Disconnected,
    /// Anything else: another transport error (the broker refused the request, did not
    /// answer in time, ...), a request that could not be encoded, a reply that could not be
    /// read.
    Other,
}

impl CallOutcome {
    pub(crate) const ALL: [Self; 7] = [
        Self::Ok,
        Self::RemoteError,
        Self::Fault,
        Self::Timeout,
        Self::Unroutable,
        Self::Disconnected,
        Self::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::RemoteError => "remote_error",
            Self::Fault => "fault",
            Self::Timeout => "timeout",
            Self::Unroutable => "unroutable",
            Self::Disconnected => "disconnected",
            Self::Other => "other",
        }
    }

    pub fn of<T, E>(result: &Result<T, CallError<E>>) -> Self {
        match result {
            Ok(_) => Self::Ok,
            Err(CallError::Remote(_)) => Self::RemoteError,
            Err(CallError::Fault(_)) => Self::Fault,
            Err(CallError::Timeout(_)) => Self::Timeout,
            Err(CallError::Transport(TransportError::NoSuchQueue { .. })) => Self::Unroutable,
            Err(CallError::Transport(TransportError::Disconnected { .. })) => Self::Disconnected,
            Err(_) => Self::Other,
        }
    }
}
