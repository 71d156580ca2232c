use bincode::{Decode, Encode};

/// Why a request could not be answered with a Fibonacci number.
///
/// These errors cross the wire in error replies, so every variant carries only plain data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Encode, Decode)]
pub enum DomainError {
    /// The server refuses to compute past its bound (it keeps every request short).
    #[error("n = {n} is above this server's bound of {max}")]
    AboveBound { n: u64, max: u64 },
    /// The request body could not be read as a request.
    #[error("invalid request: {reason}")]
    InvalidRequest { reason: String },
    /// The request named a content type the server does not speak.
    #[error("unsupported content type {content_type:?}")]
    UnsupportedContentType { content_type: String },
    /// The request body is larger than the server accepts.
    #[error("request body of {size} bytes exceeds the limit of {max} bytes")]
    BodyTooLarge { size: u64, max: u64 },
    /// The server failed in a way that is not the request's fault.
    #[error("internal server error: {reason}")]
    Internal { reason: String },
}

impl DomainError {
    /// A stable, short name for the kind of error (used in text replies and logs).
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::AboveBound { .. } => "above-bound",
            DomainError::InvalidRequest { .. } => "invalid-request",
            DomainError::UnsupportedContentType { .. } => "unsupported-content-type",
            DomainError::BodyTooLarge { .. } => "body-too-large",
            DomainError::Internal { .. } => "internal",
        }
    }

    pub fn invalid(reason: impl Into<String>) -> Self {
        DomainError::InvalidRequest {
            reason: reason.into(),
        }
    }
}
