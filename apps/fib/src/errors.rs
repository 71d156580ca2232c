//! Error replies in the tutorial's text codec, which has no notion of them: a line starting
//! with `error:`, which no number starts with, followed by the error's code and its fields.

use fibrpc_rpc::codec::truncate_for_display;
use fibrpc_rpc::{CallError, Fault};

const ERROR_PREFIX: &str = "error:";

/// `error: <code> <fields>`.
pub(crate) fn encode_error(code: &str, fields: &str) -> Vec<u8> {
    format!("{ERROR_PREFIX} {code} {fields}").into_bytes()
}

pub(crate) fn encode_fault(fault: &Fault) -> Vec<u8> {
    let fields = match fault {
        Fault::UnknownProcedure { name } => name.clone().unwrap_or_default(),
        Fault::InvalidRequest { reason } | Fault::Internal { reason } => reason.clone(),
        Fault::UnsupportedContentType { content_type } => content_type.clone(),
        Fault::BodyTooLarge { size, max } => format!("{size} {max}"),
    };
    encode_error(fault.code(), &fields)
}

/// The code and the fields of an error reply, or None for a reply that is not one.
pub(crate) fn error_reply(text: &str) -> Option<(&str, &str)> {
    let error = text.strip_prefix(ERROR_PREFIX)?.trim_start();
    Some(error.split_once(' ').unwrap_or((error, "")))
}

/// The fault of an error reply's code and fields.
///
/// # Errors
/// [`CallError::BadReply`] for an unknown code or fields that do not fit it.
pub(crate) fn decode_fault<E>(code: &str, fields: &str) -> Result<Fault, CallError<E>> {
    let fault = match code {
        "unknown-procedure" => Fault::UnknownProcedure {
            name: (!fields.is_empty()).then(|| fields.to_owned()),
        },
        "invalid-request" => Fault::invalid(fields),
        "unsupported-content-type" => Fault::UnsupportedContentType {
            content_type: fields.to_owned(),
        },
        "body-too-large" => {
            let (size, max) = two_numbers(fields).ok_or_else(|| malformed(code, fields))?;
            Fault::BodyTooLarge { size, max }
        }
        "internal" => Fault::Internal {
            reason: fields.to_owned(),
        },
        _ => return Err(malformed(code, fields)),
    };
    Ok(fault)
}

/// `<u64> <u64>`.
pub(crate) fn two_numbers(fields: &str) -> Option<(u64, u64)> {
    let (first, second) = fields.split_once(' ')?;
    Some((first.parse().ok()?, second.parse().ok()?))
}

pub(crate) fn malformed<E>(code: &str, fields: &str) -> CallError<E> {
    CallError::BadReply {
        reason: format!(
            "unreadable error reply {:?}",
            truncate_for_display(&format!("{code} {fields}"))
        ),
    }
}
