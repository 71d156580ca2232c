//! lapin's errors in the terms of the ports.

use fibrpc_ports::TransportError;
use lapin::protocol::{AMQPErrorKind, AMQPSoftError};
use lapin::ErrorKind;

/// Translates a lapin error from an operation on `queue`.
pub(crate) fn translate(error: &lapin::Error, queue: &str) -> TransportError {
    match error.kind() {
        ErrorKind::ProtocolError(amqp) => match amqp.kind() {
            AMQPErrorKind::Soft(AMQPSoftError::NOTFOUND) => TransportError::NoSuchQueue {
                queue: queue.to_owned(),
            },
            AMQPErrorKind::Soft(_) => TransportError::Refused {
                reason: amqp.to_string(),
            },
            AMQPErrorKind::Hard(_) => TransportError::disconnected(amqp.to_string()),
        },
        ErrorKind::ParsingError(_) | ErrorKind::SerialisationError(_) => {
            TransportError::Malformed {
                reason: error.to_string(),
            }
        }
        ErrorKind::ChannelsLimitReached | ErrorKind::AuthProviderError(_) => {
            TransportError::Refused {
                reason: error.to_string(),
            }
        }
        _ => TransportError::disconnected(error.to_string()),
    }
}
