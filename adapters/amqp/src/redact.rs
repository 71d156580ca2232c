//! Keeping broker passwords out of errors and logs: the ports' URL redaction, with AMQP's reading of a user without a password.

use fibrpc_ports::redact::{redact_urls, scrub_urls, LoneUser};

/// The URL (or comma-separated list) with its passwords replaced by `***`.
pub fn redact_url(url: &str) -> String {
    redact_urls(url, LoneUser::Name)
}

/// `text` with the URL's secrets replaced by `***`.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    scrub_urls(text, url, LoneUser::Name)
}
