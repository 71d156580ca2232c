//! async-nats errors as [`TransportError`]s, in one place, so that the protocol above can act
//! on them: `Disconnected` only for what a new connection cures (the protocol retries or
//! leaves the request for redelivery), never for what would fail the same way again.

use std::fmt::Display;
use std::time::Duration;

use async_nats::client::FlushError;
#[cfg(feature = "test-hooks")]
use async_nats::client::ReconnectError;
use async_nats::jetstream::context::{
    CreateStreamError, CreateStreamErrorKind, DeleteStreamError, GetStreamError,
    GetStreamErrorKind, PublishError as JsPublishError, PublishErrorKind as JsPublishErrorKind,
};
use async_nats::jetstream::stream::ConsumerError;
use async_nats::jetstream::ErrorCode;
use async_nats::{
    ConnectError, ConnectErrorKind, PublishError, PublishErrorKind, StatusCode, SubscribeError,
};
use fibrpc_ports::TransportError;

use crate::redact::scrub;

/// `connect` failed: the address (redacted) and why, with any secret of the URL scrubbed
/// from the reason too.
pub(crate) fn connect(address: &str, url: &str, error: &ConnectError) -> TransportError {
    let reason = scrub(&error.to_string(), url);
    match error.kind() {
        // Reached, but turned away: retrying with the same credentials will not help.
        ConnectErrorKind::Authentication | ConnectErrorKind::AuthorizationViolation => {
            TransportError::AccessRefused {
                address: address.to_owned(),
                reason,
            }
        }
        _ => TransportError::Unreachable {
            address: address.to_owned(),
            reason,
        },
    }
}

/// A JetStream publish of a request to `queue`, or its publish acknowledgement.
pub(crate) fn request_publish(queue: &str, error: &JsPublishError) -> TransportError {
    match error.kind() {
        // "No responders": no stream captures the queue's subject.
        JsPublishErrorKind::StreamNotFound => TransportError::NoSuchQueue {
            queue: queue.to_owned(),
        },
        JsPublishErrorKind::TimedOut => TransportError::Timeout {
            operation: format!("publishing a request to {queue:?}"),
        },
        JsPublishErrorKind::BrokenPipe => TransportError::disconnected(error.to_string()),
        // Too large, or refused by the stream's limits: the same again would fail again.
        _ => TransportError::Refused {
            reason: format!("publishing a request to {queue:?}: {error}"),
        },
    }
}

/// The connection dropped before the stream confirmed a request: it may or may not be stored.
pub(crate) fn unconfirmed(queue: &str) -> TransportError {
    TransportError::disconnected(format!(
        "NATS connection lost before the request to {queue:?} was confirmed"
    ))
}

/// A core NATS publish to `subject`: a reply address, or core mode's request subject.
pub(crate) fn core_publish(subject: &str, error: &PublishError) -> TransportError {
    match error.kind() {
        // Not disconnected: the protocol would leave the request for redelivery, and the
        // reply would be too large again (a poison loop).
        PublishErrorKind::MaxPayloadExceeded => TransportError::Refused {
            reason: format!("publishing to {subject:?}: {error}"),
        },
        // No subscription can have such a subject: the address cannot exist.
        PublishErrorKind::InvalidSubject => TransportError::NoSuchQueue {
            queue: subject.to_owned(),
        },
        PublishErrorKind::Send => TransportError::disconnected(error.to_string()),
    }
}

pub(crate) fn subscribe(error: &SubscribeError) -> TransportError {
    TransportError::disconnected(format!("subscribing to a reply inbox: {error}"))
}

/// The reply subscription ended under an inbox (async-nats closed it).
pub(crate) fn subscription_ended() -> TransportError {
    TransportError::disconnected("the reply subscription ended")
}

/// The server did not confirm a new inbox's subscription in time.
pub(crate) fn probe_timeout(limit: Duration) -> TransportError {
    TransportError::Timeout {
        operation: format!("subscribing a reply inbox (no confirmation within {limit:?})"),
    }
}

/// A flush that failed: the connection's writer is gone.
pub(crate) fn flush(error: &FlushError) -> TransportError {
    TransportError::disconnected(format!("flushing to NATS: {error}"))
}

pub(crate) fn create_stream(queue: &str, error: &CreateStreamError) -> TransportError {
    match error.kind() {
        CreateStreamErrorKind::TimedOut => TransportError::Timeout {
            operation: format!("creating the stream of {queue:?}"),
        },
        // JetStream is off, or the stream exists with another configuration.
        _ => TransportError::Refused {
            reason: format!("creating the stream of {queue:?}: {error}"),
        },
    }
}

pub(crate) fn create_consumer(queue: &str, error: &ConsumerError) -> TransportError {
    TransportError::Refused {
        reason: format!("creating the consumer of {queue:?}: {error}"),
    }
}

pub(crate) fn delete_stream(queue: &str, error: &DeleteStreamError) -> TransportError {
    TransportError::Refused {
        reason: format!("deleting the stream of {queue:?}: {error}"),
    }
}

pub(crate) fn get_stream(queue: &str, error: &GetStreamError) -> TransportError {
    match error.kind() {
        GetStreamErrorKind::JetStream(cause)
            if cause.error_code() == ErrorCode::STREAM_NOT_FOUND =>
        {
            TransportError::NoSuchQueue {
                queue: queue.to_owned(),
            }
        }
        _ => TransportError::Refused {
            reason: format!("reading the stream of {queue:?}: {error}"),
        },
    }
}

/// A pull request could not be published.
pub(crate) fn pull_request(error: &PublishError) -> TransportError {
    TransportError::disconnected(format!("asking for the next request: {error}"))
}

/// No message, heartbeat or expiry for `limit` while a pull request was outstanding.
pub(crate) fn jetstream_silent(limit: Duration) -> TransportError {
    TransportError::disconnected(format!(
        "JetStream sent nothing for {limit:?} (not even a heartbeat) while a pull was waiting"
    ))
}

/// A status that answers a pull request with neither a message nor its expiry.
pub(crate) fn pull_status(status: StatusCode, description: Option<&str>) -> TransportError {
    let what = format!("pulling requests: {status} {}", description.unwrap_or(""));
    let misconfigured = description.is_some_and(|description| {
        description.starts_with("Exceeded") || description.contains("push based")
    });
    if misconfigured {
        // Too many servers waiting (max_waiting), or a consumer this adapter did not create:
        // a new connection would get the same answer.
        TransportError::Refused { reason: what }
    } else {
        // "Consumer Deleted", no such consumer (404), JetStream not answering (503): the
        // ports call that a consumer cancelled by the broker.
        TransportError::disconnected(what)
    }
}

/// Acknowledging, rejecting or terminating a delivered request: async-nats only fails these
/// when the message cannot reach the server (or, for a double ack, no answer comes back).
pub(crate) fn settle(error: &dyn Display) -> TransportError {
    TransportError::disconnected(format!("settling a request: {error}"))
}

#[cfg(feature = "test-hooks")]
pub(crate) fn reconnect(error: &ReconnectError) -> TransportError {
    TransportError::disconnected(error.to_string())
}

/// An envelope field that NATS headers cannot carry (a line break in it).
pub(crate) fn header(name: &str) -> TransportError {
    TransportError::Malformed {
        reason: format!("{name} cannot go in a NATS header: it holds a line break"),
    }
}

/// What inboxes and request streams end with when the client reports a disconnection.
pub(crate) fn connection_lost() -> TransportError {
    TransportError::disconnected("NATS connection lost (replies sent meanwhile may be lost)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_login_is_its_own_kind_without_the_password() {
        let url = "nats://me:hunter2@127.0.0.1:4222";
        for kind in [
            ConnectErrorKind::Authentication,
            ConnectErrorKind::AuthorizationViolation,
        ] {
            let error = connect(
                "nats://me:***@127.0.0.1:4222",
                url,
                &ConnectError::new(kind),
            );
            assert!(
                matches!(error, TransportError::AccessRefused { .. }),
                "{error:?}"
            );
            assert!(
                !format!("{error} {error:?}").contains("hunter2"),
                "{error:?}"
            );
        }
    }
}
