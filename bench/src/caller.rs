//! One call of a measured run, fibrpc's or a bare one, with its answer checked, and the kind
//! of each failure for the report.

use std::sync::Arc;

use fibrpc_domain::BigNumber;
use fibrpc_fib::Fib;
use fibrpc_ports::TransportError;
#[cfg(test)]
use fibrpc_rpc::TimedOut;
use fibrpc_rpc::{CallError, RpcClient};
use tokio::sync::{mpsc, oneshot};

use crate::baseline::BareCall;

/// A request to the in-process bare echo task and the way back.
pub(crate) type MemoryRequest = (Vec<u8>, oneshot::Sender<Vec<u8>>);

/// Makes calls of one kind. Cheap to clone: each worker of a run holds one.
#[derive(Clone)]
pub(crate) enum Caller {
    Fibrpc {
        client: RpcClient,
        n: u64,
        expected: Arc<BigNumber>,
    },
    /// A bare client over a broker; the reply must be the request's body.
    Bare {
        client: Arc<dyn BareCall>,
        body: Arc<[u8]>,
    },
    /// A tokio channel to an echo task and a oneshot back: the least a request/reply can cost
    /// in one process.
    Memory {
        requests: mpsc::Sender<MemoryRequest>,
        n: u64,
    },
}

/// Why a call did not end with the right answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Failure {
    /// A short fixed name, counted in the report (`timeout`, `disconnected`, ...).
    pub kind: &'static str,
    pub message: String,
}

impl Caller {
    pub(crate) async fn call(&self) -> Result<(), Failure> {
        match self {
            Caller::Fibrpc {
                client,
                n,
                expected,
            } => match client.call::<Fib>(*n).await {
                Ok(value) if value == **expected => Ok(()),
                Ok(_) => Err(wrong_answer(*n)),
                Err(error) => Err(Failure {
                    kind: call_error_kind(&error),
                    message: error.to_string(),
                }),
            },
            Caller::Bare { client, body } => match client.call(body).await {
                Ok(reply) if *reply == **body => Ok(()),
                Ok(_) => Err(Failure {
                    kind: "wrong_answer",
                    message: "the bare echo answered with another body".to_owned(),
                }),
                Err(error) => Err(Failure {
                    kind: transport_error_kind(&error),
                    message: error.to_string(),
                }),
            },
            Caller::Memory { requests, n } => {
                // The body is made per call, as fibrpc encodes a request per call.
                let body = n.to_string().into_bytes();
                let (reply, replied) = oneshot::channel();
                let gone = || Failure {
                    kind: "disconnected",
                    message: "the in-process echo task is gone".to_owned(),
                };
                requests.send((body, reply)).await.map_err(|_| gone())?;
                replied.await.map(drop).map_err(|_| gone())
            }
        }
    }

    /// Attempts sent again under the retry policy so far (fibrpc only).
    pub(crate) fn retries(&self) -> u64 {
        match self {
            Caller::Fibrpc { client, .. } => client.stats().retries,
            _ => 0,
        }
    }
}

fn wrong_answer(n: u64) -> Failure {
    Failure {
        kind: "wrong_answer",
        message: format!("wrong answer for fib({n})"),
    }
}

pub(crate) fn call_error_kind<E>(error: &CallError<E>) -> &'static str {
    match error {
        CallError::Remote(_) => "remote",
        CallError::Fault(_) => "fault",
        CallError::BadRequest { .. } => "bad_request",
        CallError::Timeout(_) => "timeout",
        CallError::Transport(transport) => transport_error_kind(transport),
        CallError::BadReply { .. } => "bad_reply",
    }
}

pub(crate) fn transport_error_kind(error: &TransportError) -> &'static str {
    match error {
        TransportError::Disconnected { .. } => "disconnected",
        TransportError::Unreachable { .. } => "unreachable",
        TransportError::AccessRefused { .. } => "access_refused",
        TransportError::NoSuchQueue { .. } => "no_such_queue",
        TransportError::Timeout { .. } => "transport_timeout",
        TransportError::Malformed { .. } => "malformed",
        TransportError::Refused { .. } => "refused",
        TransportError::Cancelled => "cancelled",
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn every_failure_has_a_kind_of_its_own() {
        type CallError = fibrpc_rpc::CallError<fibrpc_domain::DomainError>;
        let kinds = [
            call_error_kind(&CallError::Timeout(TimedOut::after(Duration::from_secs(1)))),
            call_error_kind(&CallError::BadReply { reason: "x".into() }),
            call_error_kind(&CallError::Transport(TransportError::disconnected("x"))),
            call_error_kind(&CallError::Transport(TransportError::NoSuchQueue {
                queue: "q".into(),
            })),
            transport_error_kind(&TransportError::Timeout {
                operation: "x".into(),
            }),
            transport_error_kind(&TransportError::Refused { reason: "x".into() }),
            wrong_answer(30).kind,
            call_error_kind(&CallError::Fault(fibrpc_rpc::Fault::invalid("x"))),
        ];
        assert_eq!(kinds[0], "timeout");
        assert_eq!(kinds[2], "disconnected");
        let distinct: std::collections::BTreeSet<_> = kinds.iter().collect();
        assert_eq!(distinct.len(), kinds.len(), "{kinds:?}");
    }
}
