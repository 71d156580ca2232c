//! Discovery: every server answers [`Procedures`] (`fibrpc.procedures`) with what it serves,
//! so that a caller in any language, or an operator (`fibrpc procedures`), can ask.

use serde::{Deserialize, Serialize};

use crate::Procedure;

/// The built-in procedure every server answers: the procedures it hosts, this one included,
/// sorted by name. Its request is `()` (JSON `null`).
pub struct Procedures;

impl Procedure for Procedures {
    const NAME: &'static str = "fibrpc.procedures";
    const IDEMPOTENT: bool = true;
    type Request = ();
    type Response = Vec<ProcedureInfo>;
    type Error = DiscoveryError;
}

/// One procedure a server hosts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcedureInfo {
    pub name: String,
    /// Whether running a request twice does no harm ([`Endpoint::IDEMPOTENT`](crate::Endpoint)).
    pub idempotent: bool,
    /// The content types its requests may come in, the first being its callers' default.
    pub content_types: Vec<String>,
}

/// Discovery has no error of its own; the type exists because a procedure names one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("the server could not list its procedures")]
pub struct DiscoveryError;
