//! Keeping the broker passwords out of errors and logs.

/// The URL, or comma-separated list of URLs, with every password replaced by `***`, for logs
/// and errors.
pub fn redact_url(url: &str) -> String {
    url.split(',').map(redact_one).collect::<Vec<_>>().join(",")
}

fn redact_one(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((credentials, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    match credentials.split_once(':') {
        Some((user, _password)) => format!("{scheme}://{user}:***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// Removes the passwords of every URL in `urls` (one or a comma-separated list) from free
/// text (an error message that may quote them), as written and percent-decoded.
pub(crate) fn scrub(text: &str, urls: &str) -> String {
    let mut text = text.to_owned();
    for password in urls.split(',').filter_map(password_of) {
        for form in [password.to_owned(), percent_decoded(password)] {
            if !form.is_empty() {
                text = text.replace(&form, "***");
            }
        }
    }
    text
}

fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let credentials = authority.rsplit_once('@')?.0;
    Some(credentials.split_once(':')?.1)
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

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            redact_url("amqp://guest:secret@host:5672/vh"),
            "amqp://guest:***@host:5672/vh"
        );
        assert_eq!(redact_url("amqps://u:p%40ss@h/%2f"), "amqps://u:***@h/%2f");
        assert_eq!(
            redact_url("amqp://127.0.0.1:5672/%2f"),
            "amqp://127.0.0.1:5672/%2f"
        );
        assert_eq!(redact_url("amqp://user@host"), "amqp://user@host");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn every_password_of_a_list_is_hidden() {
        assert_eq!(
            redact_url("amqp://u:one@h1:5681/%2f,amqp://u:two@h2:5682/%2f,h3:5683"),
            "amqp://u:***@h1:5681/%2f,amqp://u:***@h2:5682/%2f,h3:5683"
        );
    }

    #[test]
    fn free_text_is_scrubbed() {
        let url = "amqp://guest:hunter2@h/";
        assert_eq!(
            scrub("failed with hunter2 inside", url),
            "failed with *** inside"
        );
        assert_eq!(scrub("nothing here", "amqp://h/"), "nothing here");
        let list = "amqp://u:one@h1/,amqp://u:p%40two@h2/";
        assert_eq!(scrub("one, p%40two and p@two", list), "***, *** and ***");
    }
}
