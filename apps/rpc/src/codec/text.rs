//! The tutorial's text bodies: a request is `n` in decimal, a reply is fib(n) in decimal.
//!
//! Requests are read as Python's `int()` reads them (the tutorial's server does
//! `int(body)`): surrounding whitespace, a sign, and single underscores between digits.
//! Error replies, which the tutorial has no notion of, are a line starting with `error:`,
//! which no number starts with, followed by the error's code and its fields.

use std::str::FromStr;

use fibrpc_domain::{BigNumber, DomainError, FibRequest, FibResponse};

use super::{truncate_for_display, MalformedReply, ReplyOutcome};

const ERROR_PREFIX: &str = "error:";

pub(super) fn encode_request(request: FibRequest) -> Vec<u8> {
    request.n.to_string().into_bytes()
}

pub(super) fn decode_request(body: &[u8]) -> Result<FibRequest, DomainError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| DomainError::invalid("request body is not UTF-8 text"))?;
    let n = parse_index(text)?;
    Ok(FibRequest { n })
}

fn parse_index(text: &str) -> Result<u64, DomainError> {
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let not_a_number = || {
        DomainError::invalid(format!(
            "expected a decimal number, got {:?}",
            truncate_for_display(trimmed)
        ))
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
        || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'_')
    {
        return Err(not_a_number());
    }
    let significant = digits.trim_start_matches(['0', '_']);
    if negative && !significant.is_empty() {
        return Err(DomainError::invalid("n must not be negative"));
    }
    let digit_count = significant.bytes().filter(u8::is_ascii_digit).count();
    significant
        .bytes()
        .filter(u8::is_ascii_digit)
        .try_fold(0u64, |n, digit| {
            n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        })
        .ok_or_else(|| {
            DomainError::invalid(format!(
                "n has {digit_count} digits, more than an index can have"
            ))
        })
}

pub(super) fn encode_reply(outcome: &ReplyOutcome) -> Vec<u8> {
    let text = match outcome {
        Ok(response) => response.value.to_string(),
        Err(error) => format!("{ERROR_PREFIX} {} {}", error.code(), error_fields(error)),
    };
    text.into_bytes()
}

fn error_fields(error: &DomainError) -> String {
    match error {
        DomainError::AboveBound { n, max } => format!("{n} {max}"),
        DomainError::InvalidRequest { reason } => reason.clone(),
        DomainError::UnsupportedContentType { content_type } => content_type.clone(),
        DomainError::BodyTooLarge { size, max } => format!("{size} {max}"),
        DomainError::Internal { reason } => reason.clone(),
    }
}

pub(super) fn decode_reply(body: &[u8]) -> Result<ReplyOutcome, MalformedReply> {
    let text = std::str::from_utf8(body)
        .map_err(|_| MalformedReply("text reply is not UTF-8".to_owned()))?
        .trim();
    if let Some(error) = text.strip_prefix(ERROR_PREFIX) {
        return decode_error(error.trim_start()).map(Err);
    }
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MalformedReply(format!(
            "expected a decimal number, got {:?}",
            truncate_for_display(text)
        )));
    }
    BigNumber::from_str(text)
        .map(|value| Ok(FibResponse::new(value)))
        .map_err(|error| MalformedReply(error.to_string()))
}

fn decode_error(text: &str) -> Result<DomainError, MalformedReply> {
    let (code, fields) = text.split_once(' ').unwrap_or((text, ""));
    let malformed = || {
        MalformedReply(format!(
            "unreadable error reply {:?}",
            truncate_for_display(text)
        ))
    };
    let two_numbers = || -> Result<(u64, u64), MalformedReply> {
        let (first, second) = fields.split_once(' ').ok_or_else(malformed)?;
        Ok((
            first.parse().map_err(|_| malformed())?,
            second.parse().map_err(|_| malformed())?,
        ))
    };
    match code {
        "above-bound" => two_numbers().map(|(n, max)| DomainError::AboveBound { n, max }),
        "invalid-request" => Ok(DomainError::invalid(fields)),
        "unsupported-content-type" => Ok(DomainError::UnsupportedContentType {
            content_type: fields.to_owned(),
        }),
        "body-too-large" => {
            two_numbers().map(|(size, max)| DomainError::BodyTooLarge { size, max })
        }
        "internal" => Ok(DomainError::Internal {
            reason: fields.to_owned(),
        }),
        _ => Err(malformed()),
    }
}
