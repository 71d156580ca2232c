//! Request queue names in NATS terms.
//!
//! Core mode's subjects (the queue's name, and one per procedure below it) and JetStream
//! mode's stream subject (`fibrpc.req.<queue>`) never overlap, so that a core request is never
//! captured by the stream and answered with its publish acknowledgement.

/// The subject JetStream mode's stream captures for `queue`: requests are stored there.
pub fn subject(queue: &str) -> String {
    format!("fibrpc.req.{queue}")
}

/// The first token of core mode's status subjects (see `core_client`): a request whose NATS
/// reply subject starts with it is not answered there.
pub(crate) const STATUS_PREFIX: &str = "_FIBRPC_NR";

/// The queue group of core mode's servers: the NATS services API's default.
pub(crate) const QUEUE_GROUP: &str = "q";

/// The core subject of `procedure` on `queue`: requests to it need not name the procedure.
pub fn procedure_subject(queue: &str, procedure: &str) -> String {
    format!("{queue}.{procedure}")
}

/// Whether `token` can stand in a NATS subject as it is (no wildcard, space or empty token).
pub(crate) fn valid_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && !token.contains(['*', '>'])
                && !token.chars().any(char::is_whitespace)
        })
}

/// The JetStream stream (and durable consumer) name of `queue`: stream names may not hold
/// `.`, `*`, `>`, spaces or path separators.
pub fn stream_name(queue: &str) -> String {
    format!("FIBRPC_{}", service_name(queue))
}

/// `queue` with what NATS names (streams, services) may not hold replaced by `_`.
pub(crate) fn service_name(queue: &str) -> String {
    queue
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_for_nats() {
        assert_eq!(subject("rpc_queue"), "fibrpc.req.rpc_queue");
        assert_eq!(
            stream_name("fibrpc.test.x y>*/z"),
            "FIBRPC_fibrpc_test_x_y___z"
        );
        assert_eq!(
            procedure_subject("rpc_queue", "text.count"),
            "rpc_queue.text.count"
        );
        assert!(valid_subject("rpc_queue.text.count"));
        for bad in ["", "a..b", "a.*", "a b", "a.>"] {
            assert!(!valid_subject(bad), "{bad:?}");
        }
    }
}
