/// What went wrong in a transport, in terms the RPC protocol can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The connection to the broker is gone (or never came up); nothing more will arrive on
    /// the inbox or stream that reported it.
    #[error("disconnected from the broker: {reason}")]
    Disconnected { reason: String },
    /// The broker could not be reached at all.
    #[error("cannot connect to {address}: {reason}")]
    Unreachable { address: String, reason: String },
    /// The broker answered but refused the login (wrong user or password, no access to the
    /// vhost or account): trying again with the same credentials fails the same way.
    /// `address` has its password hidden.
    #[error("the broker at {address} refused the login: {reason}")]
    AccessRefused { address: String, reason: String },
    /// No queue of that name exists, so the message could not be delivered.
    #[error("no such queue: {queue:?}")]
    NoSuchQueue { queue: String },
    /// The broker did not answer within the time the transport allows.
    #[error("the broker did not answer in time: {operation}")]
    Timeout { operation: String },
    /// A message arrived that the transport cannot represent as an envelope.
    #[error("malformed message: {reason}")]
    Malformed { reason: String },
    /// The broker refused an operation (a negative publisher confirm, access refused, ...).
    #[error("refused by the broker: {reason}")]
    Refused { reason: String },
    /// The consumer was cancelled by this side (shutdown); not a fault.
    #[error("consumer cancelled")]
    Cancelled,
}

impl TransportError {
    pub fn disconnected(reason: impl Into<String>) -> Self {
        TransportError::Disconnected {
            reason: reason.into(),
        }
    }

    /// `address` did not answer a connection attempt within `limit`.
    pub fn unanswered(address: &str, limit: std::time::Duration) -> Self {
        TransportError::Unreachable {
            address: address.to_owned(),
            reason: format!("no answer within {limit:?}"),
        }
    }

    /// True for errors after which the connection is gone and has to be opened again.
    pub fn is_disconnection(&self) -> bool {
        matches!(self, TransportError::Disconnected { .. })
    }
}
