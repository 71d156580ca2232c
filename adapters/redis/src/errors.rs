//! Redis errors as [`TransportError`]s, in one place, so that the protocol above can act on
//! them: `Disconnected` only for what a new connection cures (the protocol fails calls in
//! flight, or leaves the request for redelivery), never for what would fail the same way again.

use std::time::Duration;

use fibrpc_ports::TransportError;
use redis::{ErrorKind, RedisError};

use crate::redact::scrub;

/// True when the connection the command went over is gone.
pub(crate) fn is_lost(error: &RedisError) -> bool {
    error.is_connection_dropped() || error.is_io_error() && !error.is_timeout()
}

/// Any command: `what` says which, for the message.
pub(crate) fn command(what: &str, error: &RedisError) -> TransportError {
    if error.is_timeout() {
        TransportError::Timeout {
            operation: what.to_owned(),
        }
    } else if is_lost(error) {
        TransportError::disconnected(format!("{what}: {error}"))
    } else {
        // An error reply from the server (out of memory, a wrong type under our key, no
        // permission): the same command would fail again.
        TransportError::Refused {
            reason: format!("{what}: {error}"),
        }
    }
}

/// A consumer's read: a deleted stream or group ends the consumer as the broker cancelling it
/// would (`NOGROUP`; `UNBLOCKED` for a read blocked when the stream went).
pub(crate) fn read(queue: &str, error: &RedisError) -> Option<TransportError> {
    matches!(error.code(), Some("NOGROUP" | "UNBLOCKED")).then(|| {
        TransportError::disconnected(format!(
            "the request queue {queue:?} was deleted under its consumer"
        ))
    })
}

/// The Redis server did not answer a blocking read within its own timeout and a margin.
pub(crate) fn silent(limit: Duration) -> TransportError {
    TransportError::disconnected(format!("Redis did not answer a blocking read in {limit:?}"))
}

/// `connect` failed: the address (redacted) and why, with any secret of the URL scrubbed
/// from the reason too.
pub(crate) fn connect(address: &str, url: &str, error: &RedisError) -> TransportError {
    let reason = scrub(&error.to_string(), url);
    // Reached, but turned away: the same credentials will not do better.
    if error.kind() == ErrorKind::AuthenticationFailed
        || matches!(error.code(), Some("WRONGPASS" | "NOAUTH"))
    {
        return TransportError::AccessRefused {
            address: address.to_owned(),
            reason,
        };
    }
    match error.kind() {
        ErrorKind::Server(_) | ErrorKind::Extension => TransportError::Refused {
            reason: format!("{address}: {reason}"),
        },
        _ => TransportError::Unreachable {
            address: address.to_owned(),
            reason,
        },
    }
}

pub(crate) fn bad_url(address: &str, url: &str, error: &RedisError) -> TransportError {
    TransportError::Refused {
        reason: format!(
            "{address} is not a Redis URL: {}",
            scrub(&error.to_string(), url)
        ),
    }
}

pub(crate) fn bad_name(name: &str) -> TransportError {
    TransportError::Refused {
        reason: format!("{name:?} cannot name a Redis connection: empty or with spaces"),
    }
}

/// An inbox's reader ended: nothing more comes out of it.
pub(crate) fn inbox_ended() -> TransportError {
    TransportError::disconnected("the reply inbox ended (its connection was lost)")
}

/// A stream that already ended is asked again.
pub(crate) fn stream_ended() -> TransportError {
    TransportError::disconnected("the request stream ended (its connection was lost)")
}

/// The task reading for a stream failed (panicked or was aborted).
pub(crate) fn reader_failed() -> TransportError {
    TransportError::disconnected("the request stream's reader stopped")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_connection_is_a_disconnection() {
        let error = RedisError::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert!(command("x", &error).is_disconnection());
    }

    #[test]
    fn a_timeout_is_not_a_disconnection() {
        let error = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        assert!(matches!(
            command("x", &error),
            TransportError::Timeout { .. }
        ));
    }

    #[test]
    fn an_error_reply_is_refused() {
        let error = RedisError::from((ErrorKind::Extension, "OOM", "out of memory".to_owned()));
        assert!(matches!(
            command("x", &error),
            TransportError::Refused { .. }
        ));
    }
}
