//! Failed calls counted by kind, in the fault and cluster reports.

use fibrpc_rpc::CallError;

/// The name of the error's variant (`Disconnected`, `NoSuchQueue`, `Timeout`, ...), looking
/// through `CallError::Transport` to the transport's own error.
pub fn kind<E: std::fmt::Debug>(error: &CallError<E>) -> String {
    let debug = match error {
        CallError::Transport(error) => format!("{error:?}"),
        other => format!("{other:?}"),
    };
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or("error")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fibrpc_ports::TransportError;

    use super::*;

    type CallError = fibrpc_rpc::CallError<fibrpc_domain::DomainError>;

    #[test]
    fn kinds_name_the_variant() {
        let lost = CallError::Transport(TransportError::disconnected("gone"));
        assert_eq!(kind(&lost), "Disconnected");
        assert_eq!(
            kind(&CallError::Timeout(fibrpc_rpc::TimedOut::after(
                Duration::from_secs(1)
            ))),
            "Timeout"
        );
    }
}
