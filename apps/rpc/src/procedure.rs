//! What a remote procedure is: the name requests carry, the types that cross the wire, and how
//! they are written.

use fibrpc_ports::ReplyError;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{self, Codec, EncodeError, BINCODE, JSON};
use crate::{CallError, Fault};

/// A remote procedure of serde types: a name, a request, a response and an error type. It
/// travels in bincode or JSON ([`Serde`]), whichever the caller chooses.
///
/// A server hosts procedures by registering a handler for each ([`Service::register`]); a
/// client calls one with [`RpcClient::call`]:
///
/// ```
/// use fibrpc_rpc::Procedure;
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
/// }
/// ```
///
/// A procedure whose values need a wire of their own implements [`Endpoint`] instead.
///
/// [`Service::register`]: crate::Service::register
/// [`RpcClient::call`]: crate::RpcClient::call
pub trait Procedure: Send + Sync + 'static {
    /// The name a request carries (AMQP's `type` property, a NATS header); unique among the
    /// procedures of a server.
    const NAME: &'static str;
    /// Whether running a request twice does no harm, so that a client with a
    /// [`RetryPolicy`](crate::RetryPolicy) may send it again after a lost connection.
    const IDEMPOTENT: bool = false;
    /// Whether a request, once started, runs to its end even past its caller's deadline. By
    /// default a server stops it at its next await once the deadline passes (nobody waits
    /// for the reply any more), acknowledges it unanswered and counts it `cancelled`; set
    /// this for work that must finish once started.
    const RUNS_TO_COMPLETION: bool = false;
    type Request: Serialize + DeserializeOwned + Send + Sync + 'static;
    type Response: Serialize + DeserializeOwned + Send + 'static;
    /// The procedure's own errors; they reach the caller as [`CallError::Remote`].
    type Error: std::error::Error + Serialize + DeserializeOwned + Send + Sync + 'static;
}

/// What a client calls and a server hosts: a [`Procedure`]'s name and types, and their
/// [`Wire`]. Every [`Procedure`] is one, in the [`Serde`] wire; implement this directly only
/// for values that serde does not write the way the wire needs (fib's big numbers).
pub trait Endpoint: Send + Sync + 'static {
    /// As [`Procedure::NAME`].
    const NAME: &'static str;
    /// As [`Procedure::IDEMPOTENT`].
    const IDEMPOTENT: bool = false;
    /// As [`Procedure::RUNS_TO_COMPLETION`].
    const RUNS_TO_COMPLETION: bool = false;
    type Request: Send + Sync + 'static;
    type Response: Send + 'static;
    type Error: std::error::Error + Send + Sync + 'static;
    /// How requests and replies are written.
    type Wire: Wire<Self>;
}

impl<P: Procedure> Endpoint for P {
    const NAME: &'static str = P::NAME;
    const IDEMPOTENT: bool = P::IDEMPOTENT;
    const RUNS_TO_COMPLETION: bool = P::RUNS_TO_COMPLETION;
    type Request = P::Request;
    type Response = P::Response;
    type Error = P::Error;
    type Wire = Serde;
}

/// How one procedure's requests and replies are written, in each [`Codec`] it speaks.
///
/// A reply carries the response, the procedure's error, or a [`Fault`]. Faults are written by
/// the server without the procedure (an unknown one has none), in the codec's own layout
/// ([`Format::encode_fault`](crate::codec::Format::encode_fault)), so a wire reads them back
/// with the codec's helpers.
pub trait Wire<P: Endpoint + ?Sized>: 'static {
    /// The codecs this wire speaks; a client uses the first unless it prefers another of them.
    const CODECS: &'static [Codec];

    /// The codec of messages that carry no content type (from peers that send none, such as
    /// the RabbitMQ tutorial's for fib): replies to the client, and requests to a server that
    /// routes unnamed requests to this procedure.
    const UNTYPED: Codec = BINCODE;

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

    /// The response a reply carries; `mark` is the reply's error mark (the envelope's
    /// `error`), which codecs whose bodies do not tell errors apart (JSON) need.
    ///
    /// # Errors
    /// [`CallError::Remote`] or [`CallError::Fault`] for the error a reply carries,
    /// [`CallError::BadReply`] for a body that does not read as a reply.
    fn decode_reply(
        codec: Codec,
        body: &[u8],
        mark: Option<&ReplyError>,
    ) -> Result<P::Response, CallError<P::Error>>;

    /// Whether encoding `outcome` takes long enough to stall an async worker thread (fib's
    /// decimal rendering of a million-digit number does); the server then encodes it on
    /// tokio's blocking pool.
    fn heavy_reply(codec: Codec, outcome: &Result<P::Response, P::Error>) -> bool {
        let _ = (codec, outcome);
        false
    }
}

/// The codec a call of `P` goes out in when the client prefers `preferred`: that one if the
/// procedure speaks it, else the procedure's first.
pub(crate) fn request_codec<P: Endpoint>(preferred: Codec) -> Codec {
    let codecs = <P::Wire as Wire<P>>::CODECS;
    codecs
        .iter()
        .copied()
        .find(|codec| *codec == preferred)
        .or_else(|| codecs.first().copied())
        .unwrap_or(preferred)
}

/// The wire of procedures whose types are serde types: bincode (`application/x-bincode`, the
/// default) and JSON (`application/json`).
pub struct Serde;

fn unsupported(codec: Codec) -> Fault {
    Fault::UnsupportedContentType {
        content_type: codec.content_type().to_owned(),
    }
}

impl<P> Wire<P> for Serde
where
    P: Endpoint,
    P::Request: Serialize + DeserializeOwned,
    P::Response: Serialize + DeserializeOwned,
    P::Error: Serialize + DeserializeOwned,
{
    const CODECS: &'static [Codec] = &[BINCODE, JSON];

    fn encode_request(codec: Codec, request: &P::Request) -> Result<Vec<u8>, EncodeError> {
        if codec == JSON {
            codec::json::encode(request)
        } else {
            codec::bincode::encode(request)
        }
    }

    fn decode_request(codec: Codec, body: &[u8]) -> Result<P::Request, Fault> {
        if codec == BINCODE {
            codec::bincode::decode_request(body)
        } else if codec == JSON {
            codec::json::decode_request(body)
        } else {
            Err(unsupported(codec))
        }
    }

    fn encode_reply(
        codec: Codec,
        outcome: &Result<P::Response, P::Error>,
    ) -> Result<Vec<u8>, EncodeError> {
        if codec == JSON {
            codec::json::encode_reply(outcome.as_ref())
        } else {
            codec::bincode::encode_reply(outcome.as_ref())
        }
    }

    fn decode_reply(
        codec: Codec,
        body: &[u8],
        mark: Option<&ReplyError>,
    ) -> Result<P::Response, CallError<P::Error>> {
        if codec == BINCODE {
            codec::bincode::decode_reply(body)
        } else if codec == JSON {
            codec::json::decode_reply(body, mark)
        } else {
            Err(CallError::BadReply {
                reason: format!("a {codec} reply to a procedure that does not speak it"),
            })
        }
    }
}
