//! What a remote procedure is: the name requests carry, the types that cross the wire, and how
//! they are written.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{binary, text, Codec, EncodeError};
use crate::{CallError, Fault};

/// A remote procedure: a name, a request, a response and an error type, and their wire.
///
/// A server hosts procedures by registering a handler for each ([`Service::register`]); a
/// client calls one with [`RpcClient::call`]:
///
/// ```
/// use fibrpc_rpc::{Bincode, Procedure};
///
/// /// Adds up the numbers it is sent.
/// struct Sum;
///
/// #[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
/// #[error("the sum does not fit in an i64")]
/// struct Overflow;
///
/// impl Procedure for Sum {
///     const NAME: &'static str = "example.sum";
///     type Request = Vec<i64>;
///     type Response = i64;
///     type Error = Overflow;
///     type Wire = Bincode;
/// }
/// ```
///
/// [`Service::register`]: crate::Service::register
/// [`RpcClient::call`]: crate::RpcClient::call
pub trait Procedure: Send + Sync + 'static {
    /// The name a request carries (AMQP's `type` property, a NATS header); unique among the
    /// procedures of a server.
    const NAME: &'static str;
    /// Whether requests that name no procedure are this one's (and its requests name none):
    /// for a procedure older than procedure names, such as fib, the RabbitMQ tutorial's. At
    /// most one per server.
    const UNNAMED: bool = false;
    /// Whether running a request twice does no harm, so that a client with a
    /// [`RetryPolicy`](crate::RetryPolicy) may send it again after a lost connection.
    const IDEMPOTENT: bool = false;
    type Request: Send + Sync + 'static;
    type Response: Send + 'static;
    /// The procedure's own errors; they reach the caller as [`CallError::Remote`].
    type Error: std::error::Error + Send + Sync + 'static;
    /// How requests and replies are written: [`Bincode`] for serde types.
    type Wire: Wire<Self>;
}

/// How one procedure's requests and replies are written, in each [`Codec`] it speaks.
///
/// A reply carries the response, the procedure's error, or a [`Fault`]. Faults are written by
/// the server without the procedure (an unknown one has none), in the same layout for every
/// procedure of a codec, so a wire reads them back with the crate's helpers.
pub trait Wire<P: Procedure + ?Sized>: 'static {
    /// The codec a request goes out in when the client prefers `preferred`; a wire that
    /// speaks one codec only ignores the preference.
    fn request_codec(preferred: Codec) -> Codec;

    /// # Errors
    /// [`EncodeError`] when the request's own encoding fails (a `Serialize` that refuses).
    fn encode_request(codec: Codec, request: &P::Request) -> Result<Vec<u8>, EncodeError>;

    /// # Errors
    /// The fault to answer with: [`Fault::InvalidRequest`] for a body that does not read as a
    /// request, [`Fault::UnsupportedContentType`] for a codec the wire does not speak.
    fn decode_request(codec: Codec, body: &[u8]) -> Result<P::Request, Fault>;

    /// # Errors
    /// [`EncodeError`] when the response's own encoding fails; the server then answers
    /// [`Fault::Internal`].
    fn encode_reply(
        codec: Codec,
        outcome: &Result<P::Response, P::Error>,
    ) -> Result<Vec<u8>, EncodeError>;

    /// The response a reply carries.
    ///
    /// # Errors
    /// [`CallError::Remote`] or [`CallError::Fault`] for the error a reply carries,
    /// [`CallError::BadReply`] for a body that does not read as a reply.
    fn decode_reply(codec: Codec, body: &[u8]) -> Result<P::Response, CallError<P::Error>>;

    /// Whether encoding `outcome` takes long enough to stall an async worker thread (fib's
    /// decimal rendering of a million-digit number does); the server then encodes it on
    /// tokio's blocking pool.
    fn heavy_reply(codec: Codec, outcome: &Result<P::Response, P::Error>) -> bool {
        let _ = (codec, outcome);
        false
    }
}

/// The wire of procedures whose types are serde types: bincode (`application/x-bincode`).
pub struct Bincode;

impl<P> Wire<P> for Bincode
where
    P: Procedure,
    P::Request: Serialize + DeserializeOwned,
    P::Response: Serialize + DeserializeOwned,
    P::Error: Serialize + DeserializeOwned,
{
    fn request_codec(_: Codec) -> Codec {
        Codec::Bincode
    }

    fn encode_request(_: Codec, request: &P::Request) -> Result<Vec<u8>, EncodeError> {
        binary::encode(request)
    }

    fn decode_request(codec: Codec, body: &[u8]) -> Result<P::Request, Fault> {
        match codec {
            Codec::Bincode => binary::decode_request(body),
            Codec::Text => Err(Fault::UnsupportedContentType {
                content_type: codec.content_type().to_owned(),
            }),
        }
    }

    fn encode_reply(
        _: Codec,
        outcome: &Result<P::Response, P::Error>,
    ) -> Result<Vec<u8>, EncodeError> {
        binary::encode_reply(outcome.as_ref())
    }

    fn decode_reply(codec: Codec, body: &[u8]) -> Result<P::Response, CallError<P::Error>> {
        match codec {
            Codec::Bincode => binary::decode_reply(body),
            // A server answers a request it cannot read in text; it carries a fault.
            Codec::Text => Err(text::decode_fault_reply(body)),
        }
    }
}
