//! Bincode 2 bodies through serde: a request is the procedure's request; a reply is the
//! response or a failure, in one layout for every procedure. The helpers are public for
//! wires that write some of their values by hand in this layout (fib's numbers).
//!
//! The layout predates procedures: it is fib's, and fib's replies read the same as before.
//! A reply is variant 0 (the response) or 1 (a failure); among failures, variant 0 is the
//! procedure's own error and the server's faults follow in the order fib's errors had.

use bincode::enc::write::{SizeWriter, Writer};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::codec::{EncodeError, Format};
use crate::{CallError, Fault};

pub const CONTENT_TYPE: &str = "application/x-bincode";

/// The bincode [`Format`]; see [`BINCODE`](crate::codec::BINCODE).
pub struct Bincode;

impl Format for Bincode {
    fn content_type(&self) -> &'static str {
        CONTENT_TYPE
    }

    fn encode_fault(&self, fault: &Fault) -> Vec<u8> {
        encode_fault(fault)
    }
}

/// A bound on what decoding may allocate, whatever length a hostile body claims.
const DECODE_LIMIT: usize = 64 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

#[derive(Serialize, Deserialize)]
enum WireReply<R, E> {
    Response(R),
    Failed(WireFailure<E>),
}

/// [`Fault`]'s variants after the procedure's error, in their wire order (never reorder).
#[derive(Serialize, Deserialize)]
enum WireFailure<E> {
    Procedure(E),
    InvalidRequest { reason: String },
    UnsupportedContentType { content_type: String },
    BodyTooLarge { size: u64, max: u64 },
    Internal { reason: String },
    UnknownProcedure { name: Option<String> },
}

impl<E> From<&Fault> for WireFailure<E> {
    fn from(fault: &Fault) -> Self {
        match fault.clone() {
            Fault::InvalidRequest { reason } => WireFailure::InvalidRequest { reason },
            Fault::UnsupportedContentType { content_type } => {
                WireFailure::UnsupportedContentType { content_type }
            }
            Fault::BodyTooLarge { size, max } => WireFailure::BodyTooLarge { size, max },
            Fault::Internal { reason } => WireFailure::Internal { reason },
            Fault::UnknownProcedure { name } => WireFailure::UnknownProcedure { name },
        }
    }
}

impl<E> From<WireFailure<E>> for CallError<E> {
    fn from(failure: WireFailure<E>) -> Self {
        let fault = match failure {
            WireFailure::Procedure(error) => return CallError::Remote(error),
            WireFailure::InvalidRequest { reason } => Fault::InvalidRequest { reason },
            WireFailure::UnsupportedContentType { content_type } => {
                Fault::UnsupportedContentType { content_type }
            }
            WireFailure::BodyTooLarge { size, max } => Fault::BodyTooLarge { size, max },
            WireFailure::Internal { reason } => Fault::Internal { reason },
            WireFailure::UnknownProcedure { name } => Fault::UnknownProcedure { name },
        };
        CallError::Fault(fault)
    }
}

/// The body of `value`, allocated once at its exact size (as bincode's own `encode_to_vec`
/// does, and its serde one does not: that one grows the vector as it writes).
///
/// # Errors
/// [`EncodeError`] when `value`'s `Serialize` implementation fails.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, EncodeError> {
    let failed = |error: bincode::error::EncodeError| EncodeError(error.to_string());
    let mut size = SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config()).map_err(failed)?;
    let mut body = VecWriter(Vec::with_capacity(size.bytes_written));
    bincode::serde::encode_into_writer(value, &mut body, config()).map_err(failed)?;
    Ok(body.0)
}

struct VecWriter(Vec<u8>);

impl Writer for VecWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }
}

/// # Errors
/// Why `body` is not exactly one `T`, trailing bytes included.
pub fn decode<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, String> {
    let (value, read) = bincode::serde::borrow_decode_from_slice(body, config())
        .map_err(|error| error.to_string())?;
    if read != body.len() {
        return Err(format!("{} trailing bytes", body.len() - read));
    }
    Ok(value)
}

/// # Errors
/// [`Fault::InvalidRequest`] for a body that is not exactly one request.
pub fn decode_request<T: DeserializeOwned>(body: &[u8]) -> Result<T, Fault> {
    decode(body).map_err(|reason| Fault::invalid(format!("bincode request: {reason}")))
}

/// # Errors
/// [`EncodeError`] when the response's or the error's `Serialize` implementation fails.
pub fn encode_reply<R: Serialize, E: Serialize>(
    outcome: Result<R, E>,
) -> Result<Vec<u8>, EncodeError> {
    match outcome {
        Ok(response) => encode(&WireReply::<R, E>::Response(response)),
        Err(error) => encode(&WireReply::<R, E>::Failed(WireFailure::Procedure(error))),
    }
}

pub fn encode_fault(fault: &Fault) -> Vec<u8> {
    // Encoding strings and numbers has no failure mode but running out of memory, which
    // aborts anyway; an empty body would be refused by the peer as malformed, not misread.
    encode(&WireReply::<(), ()>::Failed(fault.into())).unwrap_or_default()
}

/// The response in a reply body, or the error it carries.
///
/// # Errors
/// [`CallError::Remote`] or [`CallError::Fault`] for the error a reply carries,
/// [`CallError::BadReply`] for a body that is not exactly one reply.
pub fn decode_reply<'a, R: Deserialize<'a>, E: Deserialize<'a>>(
    body: &'a [u8],
) -> Result<R, CallError<E>> {
    let reply: WireReply<R, E> = decode(body).map_err(|reason| CallError::BadReply {
        reason: format!("bincode reply: {reason}"),
    })?;
    match reply {
        WireReply::Response(response) => Ok(response),
        WireReply::Failed(failure) => Err(failure.into()),
    }
}
