//! The wire formats of requests and replies, chosen per message by its content type.
//!
//! A codec is a [`Format`] (a type of its own) named by its content type, and handled as a
//! [`Codec`]: adding one is adding a type, not editing this module. The core has two:
//!
//! - [`BINCODE`] (`application/x-bincode`): compact and typed; every serde procedure speaks
//!   it, and our client uses it unless told otherwise.
//! - [`JSON`] (`application/json`): any language's JSON; every serde procedure speaks it.
//!
//! Others live with the procedures that speak them (fib's decimal text, in fibrpc-fib). A
//! server answers in the codec of the request. How each procedure writes its values is its
//! [`Wire`](crate::Wire); the layout of a reply, and of the faults a server writes by itself,
//! is the codec's, common to every procedure.

pub mod bincode;
pub mod json;

use std::fmt;

use fibrpc_ports::ReplyError;

use crate::Fault;

pub use self::bincode::CONTENT_TYPE as BINCODE_CONTENT_TYPE;
pub use self::json::CONTENT_TYPE as JSON_CONTENT_TYPE;

/// A wire format: its content type, and how the server writes in it the faults it answers
/// with by itself, whatever the procedure.
pub trait Format: Send + Sync + 'static {
    /// The MIME type messages in this format carry, in lower case.
    fn content_type(&self) -> &'static str;

    /// A reply carrying `fault`.
    fn encode_fault(&self, fault: &Fault) -> Vec<u8>;
}

/// A handle on a [`Format`], compared by content type.
#[derive(Clone, Copy)]
pub struct Codec(&'static dyn Format);

/// Bincode 2 through serde: the default.
pub const BINCODE: Codec = Codec::new(&bincode::Bincode);
/// JSON through serde_json.
pub const JSON: Codec = Codec::new(&json::Json);

impl Codec {
    pub const fn new(format: &'static dyn Format) -> Self {
        Self(format)
    }

    pub fn content_type(self) -> &'static str {
        self.0.content_type()
    }

    /// A reply carrying `fault`, as the server writes it for any procedure.
    pub fn encode_fault(self, fault: &Fault) -> Vec<u8> {
        self.0.encode_fault(fault)
    }

    /// Whether a message of `content_type` is in this codec. Parameters (`; charset=utf-8`)
    /// and letter case are ignored, as MIME says.
    pub fn reads(self, content_type: &str) -> bool {
        essence(content_type).eq_ignore_ascii_case(self.content_type())
    }

    /// The codec among `codecs` that reads `content_type`.
    ///
    /// # Errors
    /// [`Fault::UnsupportedContentType`] when none does.
    pub fn find(codecs: &[Codec], content_type: &str) -> Result<Codec, Fault> {
        codecs
            .iter()
            .copied()
            .find(|codec| codec.reads(content_type))
            .ok_or_else(|| Fault::UnsupportedContentType {
                content_type: truncate_for_display(content_type),
            })
    }
}

impl Default for Codec {
    fn default() -> Self {
        BINCODE
    }
}

impl PartialEq for Codec {
    fn eq(&self, other: &Self) -> bool {
        self.content_type() == other.content_type()
    }
}

impl Eq for Codec {}

impl fmt::Debug for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.content_type())
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.content_type())
    }
}

/// The fault a marked reply in a core codec (bincode, JSON) carries, whatever the procedure;
/// None for another codec, or a body that carries none.
pub(crate) fn read_fault(content_type: &str, body: &[u8], mark: &ReplyError) -> Option<Fault> {
    let decoded = if BINCODE.reads(content_type) {
        bincode::decode_reply::<(), ()>(body)
    } else if JSON.reads(content_type) {
        json::decode_reply::<(), ()>(body, Some(mark))
    } else {
        return None;
    };
    match decoded {
        Err(crate::CallError::Fault(fault)) => Some(fault),
        _ => None,
    }
}

/// A content type without its parameters.
fn essence(content_type: &str) -> &str {
    content_type.split(';').next().unwrap_or_default().trim()
}

/// A value whose `Serialize` implementation refused to be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

/// Untrusted strings go into error replies and logs; keep them short.
pub fn truncate_for_display(untrusted: &str) -> String {
    const LIMIT: usize = 64;
    match untrusted.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &untrusted[..cut]),
        None => untrusted.to_owned(),
    }
}

#[cfg(test)]
mod tests;
