//! A procedure whose calls the test itself lets go: a handler held across a fault.

use fibrpc_rpc::Procedure;

/// Answers its request, once the test's handler lets it (the tests register their own
/// handler: it waits for the test's word, then returns the request).
pub struct Held;

/// `Held` never fails.
#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("never")]
pub struct Never;

impl Procedure for Held {
    const NAME: &'static str = "test.held";
    type Request = u64;
    type Response = u64;
    type Error = Never;
}
