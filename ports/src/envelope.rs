use std::time::Instant;

/// A message as the RPC protocol sees it: routing metadata and an opaque body.
///
/// Every field but the body is optional because peers outside fibrpc (the RabbitMQ tutorial's
/// clients and servers, say) may leave any of them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Ties a reply to its request; chosen fresh by the caller for every call.
    pub correlation_id: Option<String>,
    /// Where the reply to a request goes: the caller's reply address.
    pub reply_to: Option<String>,
    /// How the body is encoded (a MIME type such as `text/plain`).
    pub content_type: Option<String>,
    /// The procedure a request calls. None means the server's unnamed procedure: fib, the
    /// RabbitMQ tutorial's only one, whose clients name none.
    pub procedure: Option<String>,
    /// When the caller stops waiting. A transport that can expire messages MUST NOT deliver a
    /// request after its deadline; one that cannot passes it on to the consumer.
    pub deadline: Option<Instant>,
    pub body: Vec<u8>,
    /// The W3C trace context of the call (a `traceparent` value: `00-<trace id>-<parent
    /// id>-<flags>`), so that the server's work joins the caller's trace. An adapter MUST carry
    /// it unchanged (an AMQP header, a NATS header); the protocol, not the adapter, reads it,
    /// and ignores one it cannot parse.
    pub traceparent: Option<String>,
}

impl Envelope {
    pub fn with_body(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// True when the deadline is set and has passed at `now`.
    pub fn is_expired_at(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|deadline| deadline <= now)
    }
}
