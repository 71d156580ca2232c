//! Procedures of serde types for the unit tests, defined as users define theirs.

use serde::{Deserialize, Serialize};

use crate::Procedure;

/// Answers with its request (the tests' handlers decide what it does).
pub(crate) struct Echo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub(crate) enum EchoError {
    #[error("refused: {0}")]
    Refused(String),
}

impl Procedure for Echo {
    const NAME: &'static str = "test.echo";
    type Request = String;
    type Response = String;
    type Error = EchoError;
}

/// A procedure no test server hosts.
pub(crate) struct Absent;

impl Procedure for Absent {
    const NAME: &'static str = "test.absent";
    type Request = u64;
    type Response = u64;
    type Error = EchoError;
}
