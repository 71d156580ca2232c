//! Bincode 2 bodies: a request is `n` as a varint; a reply is a tagged value or error.

use bincode::{BorrowDecode, Encode};
use fibrpc_domain::{BigNumber, DomainError, FibRequest, FibResponse};

use super::{MalformedReply, ReplyOutcome};

/// A bound on what decoding may allocate, whatever length a hostile body claims.
const DECODE_LIMIT: usize = 64 * 1024 * 1024;

fn config() -> impl bincode::config::Config {
    bincode::config::standard().with_limit::<DECODE_LIMIT>()
}

#[derive(Encode, BorrowDecode)]
struct WireRequest {
    n: u64,
}

#[derive(Encode, BorrowDecode)]
enum WireReply<'a> {
    /// fib(n) as little-endian bytes, borrowed from the body when decoding.
    Value(&'a [u8]),
    Error(DomainError),
}

pub(super) fn encode_request(request: FibRequest) -> Vec<u8> {
    encode(&WireRequest { n: request.n })
}

pub(super) fn decode_request(body: &[u8]) -> Result<FibRequest, DomainError> {
    let wire: WireRequest = decode(body)
        .map_err(|reason| DomainError::invalid(format!("bincode request: {reason}")))?;
    Ok(FibRequest { n: wire.n })
}

pub(super) fn encode_reply(outcome: &ReplyOutcome) -> Vec<u8> {
    match outcome {
        Ok(response) => encode(&WireReply::Value(&response.value.to_le_bytes())),
        Err(error) => encode(&WireReply::Error(error.clone())),
    }
}

pub(super) fn decode_reply(body: &[u8]) -> Result<ReplyOutcome, MalformedReply> {
    let wire: WireReply<'_> =
        decode(body).map_err(|reason| MalformedReply(format!("bincode reply: {reason}")))?;
    Ok(match wire {
        WireReply::Value(bytes) => Ok(FibResponse::new(BigNumber::from_le_bytes(bytes))),
        WireReply::Error(error) => Err(error),
    })
}

fn encode(value: &impl Encode) -> Vec<u8> {
    // Encoding into a Vec has no failure mode but running out of memory, which aborts anyway;
    // an empty body would be refused by the peer as malformed rather than misread.
    bincode::encode_to_vec(value, config()).unwrap_or_default()
}

fn decode<'a, T: BorrowDecode<'a, ()>>(body: &'a [u8]) -> Result<T, String> {
    let (value, read) =
        bincode::borrow_decode_from_slice(body, config()).map_err(|error| error.to_string())?;
    if read != body.len() {
        return Err(format!("{} trailing bytes", body.len() - read));
    }
    Ok(value)
}
