//! Redis key names: what a queue and a reply inbox are called on the server.

use std::time::Duration;

/// How long an inbox stays open without its reader refreshing it (it does every few seconds).
pub(crate) const INBOX_TTL: Duration = Duration::from_secs(30);

/// [`INBOX_TTL`] as Redis takes it.
pub(crate) fn inbox_ttl_ms() -> u64 {
    u64::try_from(INBOX_TTL.as_millis()).unwrap_or(u64::MAX)
}

/// The consumer group every server of a queue reads through.
pub(crate) const GROUP: &str = "fibrpc";

/// The stream holding `queue`'s requests.
pub fn stream_key(queue: &str) -> String {
    format!("fibrpc:queue:{queue}")
}

/// A new reply address: the key of the list replies are pushed to.
pub(crate) fn new_inbox() -> String {
    format!("fibrpc:reply:{}", uuid::Uuid::new_v4().simple())
}

/// The key that exists while the inbox at `address` is open.
pub(crate) fn marker(address: &str) -> String {
    format!("{address}:open")
}

/// A consumer's name in the group, fresh for each stream.
pub(crate) fn new_consumer() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
