//! Keeping the secrets of broker URLs out of errors and logs, written once for every adapter.
//!
//! `TransportError`s name the broker's address, and a broker library may quote the URL it was
//! given in its own errors: an adapter passes both through these before they leave it.

/// What the user part of a URL means when it comes without a password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoneUser {
    /// A user name (`amqp://user@host`, `redis://user@host`): not secret.
    Name,
    /// A token (`nats://token@host`): secret.
    Token,
}

/// The URL, or comma-separated list of URLs, with every password (and token, per
/// `lone_user`) replaced by `***`.
pub fn redact_urls(urls: &str, lone_user: LoneUser) -> String {
    urls.split(',')
        .map(|url| redact_one(url, lone_user))
        .collect::<Vec<_>>()
        .join(",")
}

/// `text` with the secrets of every URL in `urls` replaced by `***`, as written and
/// percent-decoded (a library may quote either).
pub fn scrub_urls(text: &str, urls: &str, lone_user: LoneUser) -> String {
    let mut text = text.to_owned();
    for secret in urls.split(',').filter_map(|url| secret_of(url, lone_user)) {
        for form in [secret.to_owned(), percent_decoded(secret)] {
            if !form.is_empty() {
                text = text.replace(&form, "***");
            }
        }
    }
    text
}

/// The URL's scheme, credentials, host and the rest (path, query), where it has credentials.
fn parts(url: &str) -> Option<(&str, &str, &str, &str)> {
    let (scheme, rest) = url.split_once("://")?;
    // An `@` after the authority (in a path or query) is not the credentials' end.
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (credentials, host) = authority.rsplit_once('@')?;
    Some((scheme, credentials, host, path))
}

fn redact_one(url: &str, lone_user: LoneUser) -> String {
    let Some((scheme, credentials, host, path)) = parts(url) else {
        return url.to_owned();
    };
    match (credentials.split_once(':'), lone_user) {
        (Some((user, _)), _) => format!("{scheme}://{user}:***@{host}{path}"),
        (None, LoneUser::Token) => format!("{scheme}://***@{host}{path}"),
        (None, LoneUser::Name) => url.to_owned(),
    }
}

fn secret_of(url: &str, lone_user: LoneUser) -> Option<&str> {
    let (_, credentials, _, _) = parts(url)?;
    match (credentials.split_once(':'), lone_user) {
        (Some((_, password)), _) => Some(password),
        (None, LoneUser::Token) => Some(credentials),
        (None, LoneUser::Name) => None,
    }
}

/// `%XX` escapes decoded; anything that is not a valid escape kept as it is.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| text.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                decoded.push(byte);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use LoneUser::{Name, Token};

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_urls("amqp://guest:secret@host:5672/vh", Name),
            "amqp://guest:***@host:5672/vh"
        );
        assert_eq!(
            redact_urls("amqps://u:p%40ss@h/%2f", Name),
            "amqps://u:***@h/%2f"
        );
        assert_eq!(
            redact_urls("amqp://127.0.0.1:5672/%2f", Name),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert_eq!(
            redact_urls("redis://:hunter2@h:6379/1", Name),
            "redis://:***@h:6379/1"
        );
        assert_eq!(redact_urls("amqp://user@host", Name), "amqp://user@host");
        assert_eq!(redact_urls("not a url", Name), "not a url");
    }

    #[test]
    fn tokens_are_hidden_where_a_lone_user_is_one() {
        assert_eq!(
            redact_urls("nats://token@h:4222", Token),
            "nats://***@h:4222"
        );
        assert_eq!(
            redact_urls("nats://u:secret@h:4222", Token),
            "nats://u:***@h:4222"
        );
        assert_eq!(
            scrub_urls("bad token here", "nats://token@h", Token),
            "bad *** here"
        );
        assert_eq!(
            scrub_urls("a user here", "redis://user@h", Name),
            "a user here"
        );
    }

    #[test]
    fn every_password_of_a_list_is_hidden() {
        assert_eq!(
            redact_urls(
                "amqp://u:one@h1:5681/%2f,amqp://u:two@h2:5682/%2f,h3:5683",
                Name
            ),
            "amqp://u:***@h1:5681/%2f,amqp://u:***@h2:5682/%2f,h3:5683"
        );
    }

    #[test]
    fn free_text_is_scrubbed() {
        let url = "amqp://guest:hunter2@h/";
        assert_eq!(
            scrub_urls("failed with hunter2 inside", url, Name),
            "failed with *** inside"
        );
        assert_eq!(
            scrub_urls("nothing here", "amqp://h/", Name),
            "nothing here"
        );
        let list = "amqp://u:one@h1/,amqp://u:p%40two@h2/";
        assert_eq!(
            scrub_urls("one, p%40two and p@two", list, Name),
            "***, *** and ***"
        );
    }
}
