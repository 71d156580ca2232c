//! fib as a procedure: the one place where the domain's Fibonacci meets the RPC core.
//!
//! [`Fib`] is the procedure, [`FibWire`] writes it in bincode, JSON and the RabbitMQ
//! tutorial's decimal text ([`TEXT`]), and [`Fib::service`] is the server `fibrpc serve`
//! runs: requests that name no procedure are fib's, and messages with no content type are
//! text, as the tutorial's are.

mod errors;
mod text;

use dashu_int::ops::BitTest;
use fibrpc_domain::{fib, BigNumber, DomainError, Fibonacci};
use fibrpc_rpc::codec::{self, Codec, EncodeError, BINCODE, JSON};
use fibrpc_rpc::{CallError, Endpoint, Fault, ReplyError, Service, Wire};
use serde::{Deserialize, Serialize};

pub use text::CONTENT_TYPE as TEXT_CONTENT_TYPE;

/// The tutorial's decimal text (`text/plain`): fib's alone.
pub const TEXT: Codec = Codec::new(&text::Text);

/// fib(n): the exact n-th Fibonacci number.
pub struct Fib;

impl Endpoint for Fib {
    const NAME: &'static str = "fib";
    const IDEMPOTENT: bool = true;
    type Request = u64;
    type Response = BigNumber;
    type Error = DomainError;
    type Wire = FibWire;
}

impl Fib {
    /// A service answering fib(n) for n within `fibonacci`'s bound, and every request that
    /// names no procedure.
    pub fn service(fibonacci: Fibonacci) -> Service<Fibonacci> {
        Service::new(fibonacci)
            .register(Fib, |fibonacci, n| answer(*fibonacci, n))
            .route_unnamed_to(Fib)
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
    fibonacci.admit(n)?;
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

/// fib's wire: bincode, JSON, and the tutorial's decimal text.
///
/// In bincode a request is n as a varint and a response fib(n)'s little-endian bytes, in the
/// reply layout every procedure shares ([`codec::bincode`]); fib's one error,
/// [`DomainError::AboveBound`], is its two numbers. The bytes are those of the releases before
/// procedures had names. In JSON a request is n (`30`) and a response fib(n)'s decimal digits
/// as a JSON string (`"832040"`): JavaScript's `JSON.parse` reads numbers above 2^53
/// inexactly; the error is `{"n": ..., "max": ...}`.
pub struct FibWire;

/// `DomainError::AboveBound` on the wire.
#[derive(Serialize, Deserialize)]
struct AboveBound {
    n: u64,
    max: u64,
}

impl From<&DomainError> for AboveBound {
    fn from(error: &DomainError) -> Self {
        let DomainError::AboveBound { n, max } = *error;
        Self { n, max }
    }
}

impl From<AboveBound> for DomainError {
    fn from(AboveBound { n, max }: AboveBound) -> Self {
        DomainError::AboveBound { n, max }
    }
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
    const CODECS: &'static [Codec] = &[BINCODE, JSON, TEXT];
    const UNTYPED: Codec = TEXT;

    fn encode_request(codec: Codec, n: &u64) -> Result<Vec<u8>, EncodeError> {
        if codec == TEXT {
            Ok(text::encode_request(*n))
        } else if codec == JSON {
            codec::json::encode(n)
        } else {
            codec::bincode::encode(n)
        }
    }

    fn decode_request(codec: Codec, body: &[u8]) -> Result<u64, Fault> {
        if codec == TEXT {
            text::decode_request(body)
        } else if codec == JSON {
            codec::json::decode_request(body)
        } else if codec == BINCODE {
            codec::bincode::decode_request(body)
        } else {
            Err(Fault::UnsupportedContentType {
                content_type: codec.content_type().to_owned(),
            })
        }
    }

    fn encode_reply(
        codec: Codec,
        outcome: &Result<BigNumber, DomainError>,
    ) -> Result<Vec<u8>, EncodeError> {
        if codec == TEXT {
            return Ok(text::encode_reply(outcome));
        }
        if codec == JSON {
            return codec::json::encode_reply(
                outcome
                    .as_ref()
                    .map(ToString::to_string)
                    .map_err(|error| Described(AboveBound::from(error), error)),
            );
        }
        match outcome {
            Ok(value) => {
                codec::bincode::encode_reply::<_, AboveBound>(Ok(LeBytes(&value.to_le_bytes())))
            }
            Err(error) => {
                codec::bincode::encode_reply::<LeBytes<'_>, _>(Err(AboveBound::from(error)))
            }
        }
    }

    fn decode_reply(
        codec: Codec,
        body: &[u8],
        mark: Option<&ReplyError>,
    ) -> Result<BigNumber, CallError<DomainError>> {
        if codec == TEXT {
            return text::decode_reply(body);
        }
        if codec == JSON {
            let digits = codec::json::decode_reply::<String, AboveBound>(body, mark)
                .map_err(|error| error.map_remote(DomainError::from))?;
            return text::decode_digits(&digits);
        }
        codec::bincode::decode_reply::<LeBytes<'_>, AboveBound>(body)
            .map(|bytes| BigNumber::from_le_bytes(bytes.0))
            .map_err(|error| error.map_remote(DomainError::from))
    }

    fn heavy_reply(codec: Codec, outcome: &Result<BigNumber, DomainError>) -> bool {
        codec != BINCODE
            && outcome
                .as_ref()
                .is_ok_and(|value| value.bit_len() > HEAVY_DECIMAL_BITS)
    }
}

/// An error's wire form, displayed as the error itself (JSON replies carry both).
struct Described<'a, T>(T, &'a DomainError);

impl<T: Serialize> Serialize for Described<'_, T> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<T> std::fmt::Display for Described<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.1.fmt(f)
    }
}

#[cfg(test)]
mod tests;
