//! What the typed part of a procedure hands back to the pipeline: a reply body in a codec,
//! and the error it carries, if any.

use fibrpc_ports::ReplyError;

use crate::codec::Codec;
use crate::metrics::ServerOutcome;
use crate::Fault;

#[derive(Clone)]
pub(crate) struct Answer {
    pub codec: Codec,
    pub body: Vec<u8>,
    pub failed: Option<Failed>,
}

/// The error an answer carries.
#[derive(Clone)]
pub(crate) enum Failed {
    /// The procedure's own error, as text: the procedure's business, logged at debug level.
    Procedure(String),
    /// The server's own: the request's fault or the server's, logged as a warning.
    Fault(Fault),
}

impl Answer {
    pub(crate) fn fault(codec: Codec, fault: Fault) -> Self {
        Self {
            codec,
            body: codec.encode_fault(&fault),
            failed: Some(Failed::Fault(fault)),
        }
    }

    /// The reply's error mark ([`fibrpc_ports::Envelope::error`]).
    pub(crate) fn mark(&self) -> Option<ReplyError> {
        let (kind, message) = match self.failed.as_ref()? {
            Failed::Procedure(message) => ("error", message.clone()),
            Failed::Fault(fault) => (fault.code(), fault.to_string()),
        };
        Some(ReplyError {
            kind: kind.to_owned(),
            message: one_line(&message),
        })
    }

    /// How the request ended once this answer reached its caller.
    pub(crate) fn outcome(&self) -> ServerOutcome {
        match self.failed {
            None => ServerOutcome::Ok,
            Some(Failed::Procedure(_)) => ServerOutcome::Error,
            Some(Failed::Fault(_)) => ServerOutcome::Fault,
        }
    }
}

/// A message fit for a header: control characters (line breaks) become spaces.
fn one_line(message: &str) -> String {
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
