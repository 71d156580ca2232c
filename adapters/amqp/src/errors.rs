//! lapin's errors in the terms of the ports: the one place that maps them.

use fibrpc_ports::TransportError;
use lapin::protocol::{AMQPErrorKind, AMQPHardError, AMQPSoftError};
use lapin::ErrorKind;

/// Translates a lapin error from an operation on `queue`.
pub(crate) fn translate(error: &lapin::Error, queue: &str) -> TransportError {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND | AMQPSoftError::NOROUTE) => {
                TransportError::NoSuchQueue {
                    queue: queue.to_owned(),
                }
            }
            // ACCESS_REFUSED, PRECONDITION_FAILED, RESOURCE_LOCKED, ...: the broker said no to
            // this operation; only its channel is closed.
            AMQPErrorKind::Soft(_) => TransportError::Refused {
                reason: amqp.to_string(),
            },
            // A hard error closes the whole connection.
            AMQPErrorKind::Hard(_) => TransportError::disconnected(amqp.to_string()),
        },
        // Raised before anything is sent: the message itself cannot go out.
        ErrorKind::SerialisationError(_) => TransportError::Malformed {
            reason: error.to_string(),
        },
        ErrorKind::ChannelsLimitReached | ErrorKind::AuthProviderError(_) => {
            TransportError::Refused {
                reason: error.to_string(),
            }
        }
        // IO errors, closed channels or connections, missed heartbeats, unparsable frames
        // (lapin closes the connection on those): the connection is gone.
        _ => TransportError::disconnected(error.to_string()),
    }
}

/// True when the broker refused a connection's login: a wrong user or password
/// (ACCESS_REFUSED), or a vhost the user may not use (NOT_ALLOWED).
pub(crate) fn is_login_refused(error: &lapin::Error) -> bool {
    let ErrorKind::ProtocolError(amqp) = error.kind() else {
        return false;
    };
    matches!(
        amqp.kind(),
        AMQPErrorKind::Soft(AMQPSoftError::ACCESSREFUSED)
            | AMQPErrorKind::Hard(AMQPHardError::NOTALLOWED)
    )
}

#[cfg(test)]
mod tests {
    use lapin::protocol::AMQPError;

    use super::*;

    fn protocol(kind: AMQPErrorKind) -> lapin::Error {
        ErrorKind::ProtocolError(AMQPError::new(kind, "text".into())).into()
    }

    #[test]
    fn broker_refusals_keep_their_meaning() {
        assert_eq!(
            translate(&protocol(AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND)), "q"),
            TransportError::NoSuchQueue { queue: "q".into() }
        );
        for refusal in [
            AMQPSoftError::ACCESSREFUSED,
            AMQPSoftError::PRECONDITIONFAILED,
            AMQPSoftError::RESOURCELOCKED,
        ] {
            assert!(matches!(
                translate(&protocol(AMQPErrorKind::Soft(refusal)), "q"),
                TransportError::Refused { .. }
            ));
        }
    }

    #[test]
    fn lost_connections_are_disconnections() {
        let forced = protocol(AMQPErrorKind::Hard(AMQPHardError::CONNECTIONFORCED));
        assert!(translate(&forced, "q").is_disconnection());
        let reset = lapin::Error::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(translate(&reset, "q").is_disconnection());
        assert!(translate(&ErrorKind::MissingHeartbeatError.into(), "q").is_disconnection());
    }
}
