//! Keeping the broker password out of errors and logs.

/// The URL with its password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
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

/// Removes the URL's password from free text (an error message that may quote it).
pub(crate) fn scrub(text: &str, url: &str) -> String {
    match password_of(url) {
        Some(password) if !password.is_empty() => text.replace(password, "***"),
        _ => text.to_owned(),
    }
}

fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let credentials = authority.rsplit_once('@')?.0;
    Some(credentials.split_once(':')?.1)
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
    fn free_text_is_scrubbed() {
        let url = "amqp://guest:hunter2@h/";
        assert_eq!(
            scrub("failed with hunter2 inside", url),
            "failed with *** inside"
        );
        assert_eq!(scrub("nothing here", "amqp://h/"), "nothing here");
    }
}
