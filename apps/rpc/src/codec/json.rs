//! JSON bodies through serde_json, readable in any language.
//!
//! A request is the procedure's request; a successful reply is the response itself. An error
//! reply is marked outside the body (the envelope's `error`), and its body is an object:
//! `{"kind": "error", "message": ..., "error": <the procedure's error>}` for the procedure's
//! own error, `{"kind": "<fault>", "message": ..., <the fault's fields>}` for a fault. See
//! docs/wire.md.

use fibrpc_ports::ReplyError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{truncate_for_display, EncodeError, Format};
use crate::{CallError, Fault};

pub const CONTENT_TYPE: &str = "application/json";

/// The JSON [`Format`]; see [`JSON`](crate::codec::JSON).
pub struct Json;

impl Format for Json {
    fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    fn encode_fault(&self, fault: &Fault) -> Vec<u8> {
        let body = ErrorBody::<()>::from_fault(fault);
        // Strings and numbers only: serde_json cannot fail on them.
        serde_json::to_vec(&body).unwrap_or_default()
    }
}

/// The body of an error reply, tagged by its kind as [`ReplyError::kind`] is.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum ErrorBody<E> {
    Error {
        message: String,
        error: E,
    },
    UnknownProcedure {
        message: String,
        name: Option<String>,
    },
    InvalidRequest {
        message: String,
        reason: String,
    },
    UnsupportedContentType {
        message: String,
        content_type: String,
    },
    BodyTooLarge {
        message: String,
        size: u64,
        max: u64,
    },
    Internal {
        message: String,
        reason: String,
    },
}

impl<E> ErrorBody<E> {
    fn from_fault(fault: &Fault) -> Self {
        let message = fault.to_string();
        match fault.clone() {
            Fault::UnknownProcedure { name } => Self::UnknownProcedure { message, name },
            Fault::InvalidRequest { reason } => Self::InvalidRequest { message, reason },
            Fault::UnsupportedContentType { content_type } => Self::UnsupportedContentType {
                message,
                content_type,
            },
            Fault::BodyTooLarge { size, max } => Self::BodyTooLarge { message, size, max },
            Fault::Internal { reason } => Self::Internal { message, reason },
        }
    }

    fn into_call_error(self) -> CallError<E> {
        let fault = match self {
            Self::Error { error, .. } => return CallError::Remote(error),
            Self::UnknownProcedure { name, .. } => Fault::UnknownProcedure { name },
            Self::InvalidRequest { reason, .. } => Fault::InvalidRequest { reason },
            Self::UnsupportedContentType { content_type, .. } => {
                Fault::UnsupportedContentType { content_type }
            }
            Self::BodyTooLarge { size, max, .. } => Fault::BodyTooLarge { size, max },
            Self::Internal { reason, .. } => Fault::Internal { reason },
        };
        CallError::Fault(fault)
    }
}

/// # Errors
/// [`EncodeError`] when `value`'s `Serialize` implementation fails (a map with non-string
/// keys, say).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    serde_json::to_vec(value).map_err(|error| EncodeError(error.to_string()))
}

/// # Errors
/// [`Fault::InvalidRequest`] for a body that is not exactly one request.
pub fn decode_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, Fault> {
    serde_json::from_slice(body).map_err(|error| {
        Fault::invalid(format!(
            "JSON request: {}",
            truncate_for_display(&error.to_string())
        ))
    })
}

/// The body of a reply carrying `outcome`: the response itself, or the error object.
///
/// # Errors
/// [`EncodeError`] when the response's or the error's `Serialize` implementation fails.
pub fn encode_reply<R: Serialize, E: Serialize + std::fmt::Display>(
    outcome: Result<R, E>,
) -> Result<Vec<u8>, EncodeError> {
    match outcome {
        Ok(response) => encode(&response),
        Err(error) => encode(&ErrorBody::Error {
            message: error.to_string(),
            error,
        }),
    }
}

/// The response in a reply body, or the error it carries: a reply marked as an error reply
/// (`mark`, the envelope's `error`) is read as the error object, any other as the response.
///
/// # Errors
/// [`CallError::Remote`] or [`CallError::Fault`] for the error a reply carries,
/// [`CallError::BadReply`] for a body that does not read as what its mark says.
pub fn decode_reply<R: DeserializeOwned, E: DeserializeOwned>(
    body: &[u8],
    mark: Option<&ReplyError>,
) -> Result<R, CallError<E>> {
    let bad = |error: serde_json::Error| CallError::BadReply {
        reason: format!("JSON reply: {error}"),
    };
    if mark.is_none() {
        return serde_json::from_slice(body).map_err(bad);
    }
    let error: ErrorBody<E> = serde_json::from_slice(body).map_err(bad)?;
    Err(error.into_call_error())
}
