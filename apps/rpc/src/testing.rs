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

/// Waits, step by step and at most 10 s, until `condition` holds: for what no event tells.
pub(crate) async fn wait_until(mut condition: impl FnMut() -> bool) {
    let give_up = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < give_up,
            "condition not met within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}
