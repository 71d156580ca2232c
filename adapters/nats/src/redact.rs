//! Keeping NATS passwords and tokens out of errors and logs: the ports' URL redaction, with NATS's reading of a user without a password.

use fibrpc_ports::redact::{redact_urls, scrub_urls, LoneUser};

/// The URL (or comma-separated list) with its passwords and tokens replaced by `***`.
pub fn redact(url: &str) -> String {
    redact_urls(url, LoneUser::Token)
}

/// `text` with the URL's secrets replaced by `***`.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    scrub_urls(text, url, LoneUser::Token)
}
