//! The wire formats of requests and replies, chosen per message by its content type.
//!
//! - [`Codec::Bincode`] (`application/x-bincode`): compact and typed; every procedure speaks
//!   it, and our client uses it unless told otherwise.
//! - [`Codec::Text`] (`text/plain`, or no content type at all): the RabbitMQ tutorial's
//!   decimal number, both ways, which only fib speaks, so that the tutorial's clients and
//!   servers interoperate with ours.
//!
//! A server answers in the codec of the request; a request in a content type it does not know
//! gets a text error reply. How each procedure writes its values is its [`Wire`](crate::Wire);
//! the layout of a reply, and of the faults a server writes by itself, is common to all.

pub(crate) mod binary;
pub(crate) mod text;

use crate::Fault;

pub const BINCODE_CONTENT_TYPE: &str = "application/x-bincode";
pub const TEXT_CONTENT_TYPE: &str = "text/plain";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    #[default]
    Bincode,
    Text,
}

/// A value whose `Serialize` implementation refused to be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EncodeError(pub String);

impl Codec {
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Bincode => BINCODE_CONTENT_TYPE,
            Codec::Text => TEXT_CONTENT_TYPE,
        }
    }

    /// The codec of a message: no content type means the tutorial's text. Parameters
    /// (`; charset=utf-8`) and letter case are ignored, as MIME says.
    ///
    /// # Errors
    /// [`Fault::UnsupportedContentType`] for any other content type.
    pub fn for_content_type(content_type: Option<&str>) -> Result<Codec, Fault> {
        let Some(content_type) = content_type else {
            return Ok(Codec::Text);
        };
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence.is_empty() || essence.eq_ignore_ascii_case(TEXT_CONTENT_TYPE) {
            Ok(Codec::Text)
        } else if essence.eq_ignore_ascii_case(BINCODE_CONTENT_TYPE) {
            Ok(Codec::Bincode)
        } else {
            Err(Fault::UnsupportedContentType {
                content_type: truncate_for_display(content_type),
            })
        }
    }

    /// A reply carrying `fault`, as the server writes it for any procedure.
    pub fn encode_fault(self, fault: &Fault) -> Vec<u8> {
        match self {
            Codec::Bincode => binary::encode_fault(fault),
            Codec::Text => text::encode_fault(fault),
        }
    }
}

/// Untrusted strings go into error replies and logs; keep them short.
pub(crate) fn truncate_for_display(untrusted: &str) -> String {
    const LIMIT: usize = 64;
    match untrusted.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}...", &untrusted[..cut]),
        None => untrusted.to_owned(),
    }
}

#[cfg(test)]
mod tests;
