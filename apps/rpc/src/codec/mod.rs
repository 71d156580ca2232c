//! The wire formats of requests and replies, chosen per message by its content type.
//!
//! - [`Codec::Bincode`] (`application/x-bincode`): compact and typed; our client's default.
//! - [`Codec::Text`] (`text/plain`, or no content type at all): the RabbitMQ tutorial's
//!   decimal number, both ways, so the tutorial's clients and servers interoperate with ours.
//!
//! A server answers in the codec of the request; a request in a content type it does not
//! know gets a text error reply.

mod binary;
mod text;

use fibrpc_domain::{DomainError, FibRequest, FibResponse};

/// The outcome of a call as a reply carries it.
pub type ReplyOutcome = Result<FibResponse, DomainError>;

pub const BINCODE_CONTENT_TYPE: &str = "application/x-bincode";
pub const TEXT_CONTENT_TYPE: &str = "text/plain";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    #[default]
    Bincode,
    Text,
}

/// A body that could not be read as a reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MalformedReply(pub String);

impl Codec {
    pub fn content_type(self) -> &'static str {
        match self {
            Codec::Bincode => BINCODE_CONTENT_TYPE,
            Codec::Text => TEXT_CONTENT_TYPE,
        }
    }

    /// The codec of a message: no content type means the tutorial's text. Parameters
    /// (`; charset=utf-8`) and letter case are ignored, as MIME says.
    pub fn for_content_type(content_type: Option<&str>) -> Result<Codec, DomainError> {
        let Some(content_type) = content_type else {
            return Ok(Codec::Text);
        };
        let essence = content_type.split(';').next().unwrap_or_default().trim();
        if essence.is_empty() || essence.eq_ignore_ascii_case(TEXT_CONTENT_TYPE) {
            Ok(Codec::Text)
        } else if essence.eq_ignore_ascii_case(BINCODE_CONTENT_TYPE) {
            Ok(Codec::Bincode)
        } else {
            Err(DomainError::UnsupportedContentType {
                content_type: truncate_for_display(content_type),
            })
        }
    }

    pub fn encode_request(self, request: FibRequest) -> Vec<u8> {
        match self {
            Codec::Bincode => binary::encode_request(request),
            Codec::Text => text::encode_request(request),
        }
    }

    /// Reads a request body; anything unreadable is an `InvalidRequest` for the caller.
    pub fn decode_request(self, body: &[u8]) -> Result<FibRequest, DomainError> {
        match self {
            Codec::Bincode => binary::decode_request(body),
            Codec::Text => text::decode_request(body),
        }
    }

    pub fn encode_reply(self, outcome: &ReplyOutcome) -> Vec<u8> {
        match self {
            Codec::Bincode => binary::encode_reply(outcome),
            Codec::Text => text::encode_reply(outcome),
        }
    }

    pub fn decode_reply(self, body: &[u8]) -> Result<ReplyOutcome, MalformedReply> {
        match self {
            Codec::Bincode => binary::decode_reply(body),
            Codec::Text => text::decode_reply(body),
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
