//! The tutorial's text bodies: a request is `n` in decimal, a reply is fib(n) in decimal.
//!
//! Requests are read as Python's `int()` reads them (the tutorial's server does
//! `int(body)`): surrounding whitespace, a sign, and single underscores between digits.
//! Errors are the text codec's error replies (`error: above-bound <n> <max>`, see
//! [`errors`](crate::errors)).

use std::str::FromStr;

use fibrpc_domain::{BigNumber, DomainError};
use fibrpc_rpc::codec::{truncate_for_display, Format};
use fibrpc_rpc::{CallError, Fault};

use crate::errors;

pub const CONTENT_TYPE: &str = "text/plain";

/// The tutorial's text [`Format`]; see [`TEXT`](crate::TEXT).
pub struct Text;

impl Format for Text {
    fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    fn encode_fault(&self, fault: &Fault) -> Vec<u8> {
        errors::encode_fault(fault)
    }
}

const ABOVE_BOUND: &str = "above-bound";

pub(super) fn encode_request(n: u64) -> Vec<u8> {
    n.to_string().into_bytes()
}

pub(super) fn decode_request(body: &[u8]) -> Result<u64, Fault> {
    let text =
        std::str::from_utf8(body).map_err(|_| Fault::invalid("request body is not UTF-8 text"))?;
    parse_index(text)
}

fn parse_index(text: &str) -> Result<u64, Fault> {
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.as_bytes().first() {
        Some(b'-') => (true, &trimmed[1..]),
        Some(b'+') => (false, &trimmed[1..]),
        _ => (false, trimmed),
    };
    let not_a_number = || {
        Fault::invalid(format!(
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
        return Err(Fault::invalid("n must not be negative"));
    }
    let digit_count = significant.bytes().filter(u8::is_ascii_digit).count();
    significant
        .bytes()
        .filter(u8::is_ascii_digit)
        .try_fold(0u64, |n, digit| {
            n.checked_mul(10)?.checked_add(u64::from(digit - b'0'))
        })
        .ok_or_else(|| {
            Fault::invalid(format!(
                "n has {digit_count} digits, more than an index can have"
            ))
        })
}

pub(super) fn encode_reply(outcome: &Result<BigNumber, DomainError>) -> Vec<u8> {
    match outcome {
        Ok(value) => value.to_string().into_bytes(),
        Err(DomainError::AboveBound { n, max }) => {
            errors::encode_error(ABOVE_BOUND, &format!("{n} {max}"))
        }
    }
}

pub(super) fn decode_reply(body: &[u8]) -> Result<BigNumber, CallError<DomainError>> {
    let bad = |reason: String| CallError::BadReply { reason };
    let text = std::str::from_utf8(body)
        .map_err(|_| bad("text reply is not UTF-8".to_owned()))?
        .trim();
    if let Some((code, fields)) = errors::error_reply(text) {
        if code == ABOVE_BOUND {
            let (n, max) =
                errors::two_numbers(fields).ok_or_else(|| errors::malformed(code, fields))?;
            return Err(CallError::Remote(DomainError::AboveBound { n, max }));
        }
        return Err(errors::decode_fault(code, fields)?.into());
    }
    decode_digits(text)
}

/// fib(n) from its decimal digits (a text reply, a JSON reply's string).
pub(super) fn decode_digits<E>(text: &str) -> Result<BigNumber, CallError<E>> {
    let bad = |reason: String| CallError::BadReply { reason };
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(format!(
            "expected a decimal number, got {:?}",
            truncate_for_display(text)
        )));
    }
    BigNumber::from_str(text).map_err(|error| bad(error.to_string()))
}
