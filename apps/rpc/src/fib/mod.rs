//! fib as a procedure: the one place where the domain's Fibonacci meets the RPC core.
//!
//! [`Fib`] is the procedure (requests that name none are its, as the RabbitMQ tutorial's
//! are), [`FibWire`] writes it in both codecs (bincode, and the tutorial's decimal text), and
//! [`Fib::service`] is the server `fibrpc serve` runs.

mod text;

use dashu_int::ops::BitTest;
use fibrpc_domain::{fib, BigNumber, DomainError, FibRequest, Fibonacci};
use serde::{Deserialize, Serialize};

use crate::codec::{binary, Codec, EncodeError};
use crate::{CallError, Fault, Procedure, Service, Wire};

/// fib(n): the exact n-th Fibonacci number.
pub struct Fib;

impl Procedure for Fib {
    const NAME: &'static str = "fib";
    const UNNAMED: bool = true;
    const IDEMPOTENT: bool = true;
    type Request = u64;
    type Response = BigNumber;
    type Error = DomainError;
    type Wire = FibWire;
}

impl Fib {
    /// A service answering fib(n) for n within `fibonacci`'s bound.
    pub fn service(fibonacci: Fibonacci) -> Service<Fibonacci> {
        Service::new(fibonacci).register(Fib, |fibonacci, n| answer(*fibonacci, n))
    }
}

/// Past this n the computation takes long enough to stall an async worker thread, so it moves
/// to the blocking pool (fib(20,000) takes about 50 us, fib(100,000) 0.7 ms).
const BLOCKING_THRESHOLD_N: u64 = 20_000;

/// fib(n) within `fibonacci`'s bound; a large n is computed on tokio's blocking pool.
///
/// # Errors
/// [`DomainError::AboveBound`] for n above the bound, before anything is computed.
pub async fn answer(fibonacci: Fibonacci, n: u64) -> Result<BigNumber, DomainError> {
    fibonacci.admit(FibRequest { n })?;
    if n < BLOCKING_THRESHOLD_N {
        return Ok(fib(n));
    }
    match tokio::task::spawn_blocking(move || fib(n)).await {
        Ok(value) => Ok(value),
        // The server answers a panicking handler with `Fault::Internal`.
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(error) => panic!("the computation of fib({n}) was cancelled: {error}"),
    }
}

/// fib's wire: bincode, and the tutorial's decimal text.
///
/// In bincode a request is n as a varint and a response fib(n)'s little-endian bytes, in the
/// reply layout every procedure shares ([`binary`]); fib's one error,
/// [`DomainError::AboveBound`], is its two numbers. The bytes are those of the releases before
/// procedures had names.
pub struct FibWire;

/// `DomainError::AboveBound` on the wire.
#[derive(Serialize, Deserialize)]
struct AboveBound {
    n: u64,
    max: u64,
}

/// fib(n)'s little-endian bytes: written as one byte string, not a sequence of numbers.
struct LeBytes<'a>(&'a [u8]);

impl Serialize for LeBytes<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

impl<'de> Deserialize<'de> for LeBytes<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        <&[u8]>::deserialize(deserializer).map(LeBytes)
    }
}

/// Past this size (about fib(20,000)) rendering fib(n) in decimal stalls an async worker: the
/// decimal digits of fib(1,000,000) take 18 ms.
const HEAVY_DECIMAL_BITS: usize = 14_000;

impl Wire<Fib> for FibWire {
    fn request_codec(preferred: Codec) -> Codec {
        preferred
    }

    fn encode_request(codec: Codec, n: &u64) -> Result<Vec<u8>, EncodeError> {
        match codec {
            Codec::Bincode => binary::encode(n),
            Codec::Text => Ok(text::encode_request(*n)),
        }
    }

    fn decode_request(codec: Codec, body: &[u8]) -> Result<u64, Fault> {
        match codec {
            Codec::Bincode => binary::decode_request(body),
            Codec::Text => text::decode_request(body),
        }
    }

    fn encode_reply(
        codec: Codec,
        outcome: &Result<BigNumber, DomainError>,
    ) -> Result<Vec<u8>, EncodeError> {
        match codec {
            Codec::Bincode => match outcome {
                Ok(value) => {
                    binary::encode_reply::<_, AboveBound>(Ok(LeBytes(&value.to_le_bytes())))
                }
                Err(DomainError::AboveBound { n, max }) => {
                    binary::encode_reply::<LeBytes<'_>, _>(Err(AboveBound { n: *n, max: *max }))
                }
            },
            Codec::Text => Ok(text::encode_reply(outcome)),
        }
    }

    fn decode_reply(codec: Codec, body: &[u8]) -> Result<BigNumber, CallError<DomainError>> {
        match codec {
            Codec::Bincode => binary::decode_reply::<LeBytes<'_>, AboveBound>(body)
                .map(|bytes| BigNumber::from_le_bytes(bytes.0))
                .map_err(|error| {
                    error.map_remote(|AboveBound { n, max }| DomainError::AboveBound { n, max })
                }),
            Codec::Text => text::decode_reply(body),
        }
    }

    fn heavy_reply(codec: Codec, outcome: &Result<BigNumber, DomainError>) -> bool {
        codec == Codec::Text
            && outcome
                .as_ref()
                .is_ok_and(|value| value.bit_len() > HEAVY_DECIMAL_BITS)
    }
}

#[cfg(test)]
mod tests;
