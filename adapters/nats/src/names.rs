//! Request queue names in NATS terms.

/// The subject requests for `queue` are published to.
pub fn subject(queue: &str) -> String {
    format!("fibrpc.req.{queue}")
}

/// The JetStream stream (and durable consumer) name of `queue`: stream names may not hold
/// `.`, `*`, `>`, spaces or path separators.
pub fn stream_name(queue: &str) -> String {
    let safe: String = queue
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("FIBRPC_{safe}")
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
    }
}
