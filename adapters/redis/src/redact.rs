//! Keeping the password of a Redis URL out of errors and logs.

/// The secret of `url` (`redis://user:secret@host` or `redis://:secret@host`), if any.
fn secret(url: &str) -> Option<&str> {
    let (_, rest) = url.split_once("://")?;
    let (credentials, _) = rest.rsplit_once('@')?;
    let secret = credentials.split_once(':').map_or(credentials, |(_, p)| p);
    (!secret.is_empty()).then_some(secret)
}

/// The URL with its password replaced by `***`.
pub fn redact(url: &str) -> String {
    scrub(url, url)
}

/// `text` with the password of `url`, wherever it appears, replaced by `***`: the redis crate
/// may quote the URL in its errors.
pub(crate) fn scrub(text: &str, url: &str) -> String {
    match secret(url) {
        Some(secret) => text.replace(secret, "***"),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("redis://u:hunter2@h:6379"), "redis://u:***@h:6379");
        assert_eq!(redact("redis://:hunter2@h:6379/1"), "redis://:***@h:6379/1");
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            scrub("no hunter2 here", "redis://:hunter2@h"),
            "no *** here"
        );
    }
}
