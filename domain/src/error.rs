/// Why fib(n) was not computed.
///
/// The errors of the transport and of the RPC protocol (an unreadable request, a body too
/// large, ...) are not the domain's: `fibrpc-rpc` has its own for those.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The server refuses to compute past its bound (it keeps every request short).
    #[error("n = {n} is above this server's bound of {max}")]
    AboveBound { n: u64, max: u64 },
}
