//! Several broker addresses: the nodes of one RabbitMQ cluster, tried in turn.
//!
//! `AmqpConfig::url` holds one URL or a comma-separated list. The first entry is a full
//! `amqp://` or `amqps://` URL. Each later entry is either a full URL naming the same user,
//! password, vhost, scheme and URL options as the first (only host and port may differ), or
//! just `host` or `host:port`, which takes everything else from the first (a missing port is
//! the scheme's default: 5672, or 5671 for amqps). A list mixing users, vhosts or TLS is
//! refused: a cluster shares them, so a difference is a mistake that would otherwise surface
//! only at the first failover. A comma inside a password must be written `%2C`.

use std::sync::atomic::{AtomicUsize, Ordering};

use lapin::uri::AMQPUri;

use crate::redact::{redact_url, scrub};

/// Why an address list cannot be used. Entries are shown with their passwords hidden.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("no broker address given")]
    Empty,
    #[error("broker address {position} is empty (a stray comma?)")]
    EmptyEntry { position: usize },
    #[error(
        "the first broker address must be a full amqp:// or amqps:// URL, not {entry:?} \
         (only later ones may be host:port)"
    )]
    FirstNotUrl { entry: String },
    #[error("broker address {position} ({entry}) is not a usable AMQP URL: {reason}")]
    Invalid {
        position: usize,
        entry: String,
        reason: String,
    },
    #[error(
        "broker address {position} ({entry}) has another {field} than the first; every \
         address of a list must share user, password, vhost, scheme and options (only host \
         and port may differ)"
    )]
    Inconsistent {
        position: usize,
        entry: String,
        field: &'static str,
    },
}

/// Parses an address list into one full URL per node, in the order given.
pub fn parse_addresses(list: &str) -> Result<Vec<String>, AddressError> {
    if list.trim().is_empty() {
        return Err(AddressError::Empty);
    }
    let entries: Vec<&str> = list.split(',').map(str::trim).collect();
    let first = entries[0];
    if !first.contains("://") {
        return Err(AddressError::FirstNotUrl {
            entry: redact_url(first),
        });
    }
    let first_uri = parse_uri(1, first, list)?;
    let mut urls = vec![first.to_owned()];
    for (index, entry) in entries.iter().enumerate().skip(1) {
        let position = index + 1;
        if entry.is_empty() {
            return Err(AddressError::EmptyEntry { position });
        }
        let url = if entry.contains("://") {
            (*entry).to_owned()
        } else {
            with_host_port(first, entry).ok_or_else(|| AddressError::Invalid {
                position,
                entry: (*entry).to_owned(),
                reason: "expected host, host:port or a full URL".to_owned(),
            })?
        };
        let uri = parse_uri(position, &url, list)?;
        if let Some(field) = difference(&first_uri, &uri) {
            return Err(AddressError::Inconsistent {
                position,
                entry: redact_url(entry),
                field,
            });
        }
        urls.push(url);
    }
    Ok(urls)
}

fn parse_uri(position: usize, url: &str, list: &str) -> Result<AMQPUri, AddressError> {
    let invalid = |reason: String| AddressError::Invalid {
        position,
        entry: redact_url(url),
        // The parser may quote the URL, password included.
        reason: scrub(&reason, list),
    };
    // lapin's URL parser (amq-protocol-uri 10.6) takes an IPv6 literal for no host at all and
    // would connect to localhost instead: refuse rather than go to the wrong broker.
    if host_port(url).starts_with('[') {
        return Err(invalid(
            "IPv6 address literals are not supported (lapin would connect to localhost); \
             use a host name"
                .to_owned(),
        ));
    }
    url.parse::<AMQPUri>().map_err(invalid)
}

/// `host:port` of a URL, without credentials: an address named briefly.
pub(crate) fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

/// What, besides host and port, differs between two entries.
fn difference(first: &AMQPUri, other: &AMQPUri) -> Option<&'static str> {
    let (a, b) = (&first.authority.userinfo, &other.authority.userinfo);
    if first.scheme != other.scheme {
        Some("scheme (amqp or amqps)")
    } else if a.username != b.username {
        Some("user")
    } else if a.password != b.password {
        Some("password")
    } else if first.vhost != other.vhost {
        Some("vhost")
    } else if first.query != other.query {
        Some("set of URL options (?heartbeat=...)")
    } else {
        None
    }
}

/// The first URL with its host and port replaced by `host_port`; None if `host_port` is not
/// a plain `host` or `host:port`.
fn with_host_port(first: &str, host_port: &str) -> Option<String> {
    if host_port.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let (scheme, rest) = first.split_once("://")?;
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let credentials = authority
        .rsplit_once('@')
        .map(|(credentials, _)| format!("{credentials}@"))
        .unwrap_or_default();
    Some(format!("{scheme}://{credentials}{host_port}{path}"))
}

/// The list's URLs in a random order, so that the clients of many processes spread over the
/// nodes instead of all starting with the first.
pub(crate) fn shuffled(mut urls: Vec<String>) -> Vec<String> {
    // The v4 uuid's random bits are the seed: no dependency for one shuffle.
    let mut state = uuid::Uuid::new_v4().as_u64_pair().0 | 1;
    for i in (1..urls.len()).rev() {
        // xorshift64: plenty for picking a start order.
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        urls.swap(i, (state % (i as u64 + 1)) as usize);
    }
    urls
}

/// The addresses in connecting order, and where the next round of attempts starts: at the
/// first, then after the node last connected to, so that a lost node is tried last.
pub(crate) struct AddressRing {
    urls: Vec<String>,
    next: AtomicUsize,
}

impl AddressRing {
    pub(crate) fn new(urls: Vec<String>) -> Self {
        Self {
            urls,
            next: AtomicUsize::new(0),
        }
    }

    /// Every address once, starting where the last successful connection leaves off.
    pub(crate) fn round(&self) -> impl Iterator<Item = (usize, &str)> {
        let start = self.next.load(Ordering::Acquire);
        let len = self.urls.len();
        (0..len).map(move |k| {
            let index = (start + k) % len;
            (index, self.urls[index].as_str())
        })
    }

    /// Records a connection to the address at `index`: the next round starts after it.
    pub(crate) fn connected(&self, index: usize) {
        self.next
            .store((index + 1) % self.urls.len(), Ordering::Release);
    }

    pub(crate) fn len(&self) -> usize {
        self.urls.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_url_is_a_list_of_one() {
        assert_eq!(
            parse_addresses("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap(),
            ["amqp://guest:guest@127.0.0.1:5672/%2f"]
        );
    }

    #[test]
    fn host_port_entries_take_the_first_urls_credentials_and_vhost() {
        let urls = parse_addresses(
            "amqp://u:pw@h1:5681/vh?heartbeat=5, h2:5682,h3 ,amqp://u:pw@h4/vh?heartbeat=5",
        )
        .unwrap();
        assert_eq!(
            urls,
            [
                "amqp://u:pw@h1:5681/vh?heartbeat=5",
                "amqp://u:pw@h2:5682/vh?heartbeat=5",
                "amqp://u:pw@h3/vh?heartbeat=5",
                "amqp://u:pw@h4/vh?heartbeat=5",
            ]
        );
        assert_eq!(
            parse_addresses("amqps://h1,h2:5671").unwrap(),
            ["amqps://h1", "amqps://h2:5671"]
        );
    }

    #[test]
    fn a_vhost_written_two_ways_is_one_vhost() {
        assert!(parse_addresses("amqp://h1:5672/%2f,amqp://h2:5672/%2F").is_ok());
        assert!(parse_addresses("amqp://h1:5672,amqp://guest:guest@h2:5672").is_ok());
    }

    #[test]
    fn inconsistent_lists_are_refused_without_the_password() {
        let cases = [
            ("amqp://u:secret@h1/vh,amqps://u:secret@h2/vh", "scheme"),
            ("amqp://u:secret@h1/vh,amqp://v:secret@h2/vh", "user"),
            ("amqp://u:secret@h1/vh,amqp://u:other@h2/vh", "password"),
            ("amqp://u:secret@h1/vh,amqp://u:secret@h2/other", "vhost"),
            (
                "amqp://u:secret@h1/vh,amqp://u:secret@h2/vh?heartbeat=1",
                "options",
            ),
        ];
        for (list, field) in cases {
            let error = parse_addresses(list).unwrap_err();
            let AddressError::Inconsistent {
                position,
                field: what,
                ..
            } = &error
            else {
                panic!("{list}: {error:?}");
            };
            assert_eq!(*position, 2);
            assert!(what.contains(field), "{list}: {what}");
            let shown = format!("{error} {error:?}");
            assert!(
                !shown.contains("secret") && !shown.contains("other@"),
                "{shown}"
            );
        }
    }

    #[test]
    fn malformed_lists_say_which_entry() {
        assert_eq!(parse_addresses(" "), Err(AddressError::Empty));
        assert_eq!(
            parse_addresses("amqp://h1,,h3"),
            Err(AddressError::EmptyEntry { position: 2 })
        );
        assert_eq!(
            parse_addresses("amqp://h1,"),
            Err(AddressError::EmptyEntry { position: 2 })
        );
        assert!(matches!(
            parse_addresses("h1:5672,amqp://h2"),
            Err(AddressError::FirstNotUrl { .. })
        ));
        for bad in [
            "amqp://h1,h2/vh",
            "amqp://h1,u@h2",
            "amqp://h1,h2:port",
            "amqp://h1,http://h2",
        ] {
            assert!(
                matches!(
                    parse_addresses(bad),
                    Err(AddressError::Invalid { position: 2, .. })
                ),
                "{bad}: {:?}",
                parse_addresses(bad)
            );
        }
        for ipv6 in ["amqp://[::1]:5672/%2f", "amqp://h1,[::1]:5672"] {
            let error = parse_addresses(ipv6).unwrap_err();
            assert!(error.to_string().contains("IPv6"), "{error}");
        }
        let error = parse_addresses("amqp://u:hunter2@h1:99999").unwrap_err();
        assert!(!format!("{error} {error:?}").contains("hunter2"), "{error}");
    }

    #[test]
    fn rounds_start_at_the_first_then_after_the_last_connected() {
        let ring = AddressRing::new(vec!["a".into(), "b".into(), "c".into()]);
        let order = |ring: &AddressRing| {
            ring.round()
                .map(|(_, url)| url.to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(order(&ring), ["a", "b", "c"]);
        ring.connected(0);
        assert_eq!(order(&ring), ["b", "c", "a"], "a lost node is tried last");
        ring.connected(2);
        assert_eq!(order(&ring), ["a", "b", "c"], "round the list");
        let indices: Vec<usize> = ring.round().map(|(index, _)| index).collect();
        assert_eq!(indices, [0, 1, 2]);
    }

    #[test]
    fn a_shuffle_keeps_every_address_and_varies_the_order() {
        let urls: Vec<String> = (0..5).map(|i| format!("amqp://h{i}")).collect();
        let mut firsts = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let mut shuffled = shuffled(urls.clone());
            firsts.insert(shuffled[0].clone());
            shuffled.sort();
            assert_eq!(shuffled, urls);
        }
        // 200 shuffles all starting with the same node would be a broken shuffle.
        assert!(firsts.len() > 1, "{firsts:?}");
    }
}
