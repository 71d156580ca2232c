//! Which of NATS's two ways a connection carries requests, and the URL query that picks it.

use std::fmt;
use std::str::FromStr;

use fibrpc_ports::TransportError;

/// How requests travel. Replies go over core NATS in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NatsMode {
    /// Core request/reply, as NATS users do RPC: a request goes to one server of the queue
    /// group subscribed to the queue's subject, or fails at once with "no responders". Nothing
    /// is stored: a request whose server dies is not delivered again.
    #[default]
    Core,
    /// Requests stored in a JetStream stream and pulled by a shared durable consumer:
    /// acknowledged, delivered again after a server dies, waiting for a server to start.
    JetStream,
}

impl FromStr for NatsMode {
    type Err = TransportError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "core" => Ok(NatsMode::Core),
            "jetstream" => Ok(NatsMode::JetStream),
            other => Err(TransportError::Refused {
                reason: format!("unknown NATS mode {other:?}: core or jetstream"),
            }),
        }
    }
}

impl fmt::Display for NatsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NatsMode::Core => "core",
            NatsMode::JetStream => "jetstream",
        })
    }
}

/// `url` without its `mode=` query, and the mode: the query's if it has one, else `default`.
/// Other query parameters are left to async-nats.
pub(crate) fn from_url(url: &str, default: NatsMode) -> Result<(String, NatsMode), TransportError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), default));
    };
    let mut mode = default;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.strip_prefix("mode=") {
            Some(value) => mode = value.parse()?,
            None => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((url, mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_query_picks_the_mode() {
        let plain = from_url("nats://h:4222", NatsMode::Core).unwrap();
        assert_eq!(plain, ("nats://h:4222".to_owned(), NatsMode::Core));
        let js = from_url("nats://h:4222?mode=jetstream", NatsMode::Core).unwrap();
        assert_eq!(js, ("nats://h:4222".to_owned(), NatsMode::JetStream));
        let kept = from_url("nats://h?a=1&mode=core&b=2", NatsMode::JetStream).unwrap();
        assert_eq!(kept, ("nats://h?a=1&b=2".to_owned(), NatsMode::Core));
        assert!(matches!(
            from_url("nats://h?mode=fast", NatsMode::Core),
            Err(TransportError::Refused { .. })
        ));
    }
}
