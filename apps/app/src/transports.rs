//! The transports fibrpc knows, as data: a transport's differences are its entry here and its
//! arm in `connect.rs`.

/// Where a transport's broker is on a command line: `--<long>`, or the variable `<env>`,
/// else `default`.
#[derive(Debug, Clone, Copy)]
pub struct UrlFlag {
    pub long: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// One transport: its `--transport` name, the URL schemes that choose it, and what a command
/// line needs to know of it.
#[derive(Debug)]
pub struct Transport {
    /// The `--transport` value.
    pub name: &'static str,
    /// One line for `--help`.
    pub about: &'static str,
    /// The URL schemes that choose it (`nats` for `nats://...`).
    pub schemes: &'static [&'static str],
    /// Where its broker is, if it has one out of this process.
    pub url_flag: Option<UrlFlag>,
    /// A broker inside this process: `serve`, `call` and server processes cannot use it.
    pub in_process: bool,
    /// Whether it reads the request queue's declaration settings ([`RequestQueueSpec`]);
    /// where it does not, a non-default one is an error rather than ignored.
    ///
    /// [`RequestQueueSpec`]: crate::RequestQueueSpec
    pub takes_queue_spec: bool,
}

/// Every transport, the default first.
pub static TRANSPORTS: &[Transport] = &[
    Transport {
        name: "amqp",
        about: "RabbitMQ (AMQP 0-9-1)",
        schemes: &["amqp", "amqps"],
        url_flag: Some(UrlFlag {
            long: "amqp-url",
            env: "AMQP_URL",
            default: "amqp://127.0.0.1:5672/%2f",
            help: "RabbitMQ's URL, with user, password and vhost; or the nodes of a cluster, \
                   comma separated, tried in turn (`amqp://u:p@h1:5672/%2f,h2:5672,h3:5672`: \
                   later entries may be host:port, taking the first's user, password and vhost)",
        }),
        in_process: false,
        takes_queue_spec: true,
    },
    Transport {
        name: "nats",
        about: "NATS: core request/reply, or JetStream with `?mode=jetstream` in the URL",
        schemes: &["nats"],
        url_flag: Some(UrlFlag {
            long: "nats-url",
            env: "NATS_URL",
            default: "nats://127.0.0.1:4222",
            help: "The NATS server's URL, for `--transport nats`; `?mode=jetstream` stores requests in JetStream",
        }),
        in_process: false,
        takes_queue_spec: false,
    },
    Transport {
        name: "redis",
        about: "Redis 7 (Streams)",
        schemes: &["redis"],
        url_flag: Some(UrlFlag {
            long: "redis-url",
            env: "REDIS_URL",
            default: "redis://127.0.0.1:6379",
            help: "The Redis server's URL, for `--transport redis`",
        }),
        in_process: false,
        takes_queue_spec: false,
    },
    Transport {
        name: "memory",
        about: "fibrpc's in-memory broker, inside this process",
        schemes: &["memory"],
        url_flag: None,
        in_process: true,
        takes_queue_spec: false,
    },
];

/// The transport `name` names (`amqp`, `nats`, ...).
pub fn transport_named(name: &str) -> Option<&'static Transport> {
    TRANSPORTS.iter().find(|transport| transport.name == name)
}

/// The transport a URL's scheme chooses; for a comma-separated list of AMQP nodes, the
/// first's.
pub fn transport_of(url: &str) -> Option<&'static Transport> {
    let (scheme, _) = url.trim_start().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    TRANSPORTS
        .iter()
        .find(|transport| transport.schemes.contains(&scheme.as_str()))
}

impl Transport {
    /// Its URL when no flag or variable says otherwise.
    pub fn default_url(&self) -> String {
        match self.url_flag {
            Some(flag) => flag.default.to_owned(),
            None => format!("{}://", self.schemes[0]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scheme_chooses_one_transport() {
        let chosen = |url| transport_of(url).map(|transport| transport.name);
        assert_eq!(chosen("amqp://u:p@h/%2f"), Some("amqp"));
        assert_eq!(chosen("AMQPS://h:5671,h2:5671"), Some("amqp"));
        assert_eq!(chosen("nats://127.0.0.1:4222"), Some("nats"));
        assert_eq!(chosen("redis://127.0.0.1"), Some("redis"));
        assert_eq!(chosen("memory://"), Some("memory"));
        assert_eq!(chosen("http://example.org"), None);
        assert_eq!(chosen("127.0.0.1:5672"), None);
    }

    #[test]
    fn names_and_schemes_are_distinct_and_the_default_is_a_broker() {
        let names: std::collections::BTreeSet<_> = TRANSPORTS.iter().map(|t| t.name).collect();
        assert_eq!(names.len(), TRANSPORTS.len());
        let schemes: Vec<_> = TRANSPORTS.iter().flat_map(|t| t.schemes).collect();
        let distinct: std::collections::BTreeSet<_> = schemes.iter().collect();
        assert_eq!(distinct.len(), schemes.len());
        assert!(!TRANSPORTS[0].in_process);
        for transport in TRANSPORTS {
            assert_eq!(
                transport_of(&transport.default_url()).map(|t| t.name),
                Some(transport.name)
            );
        }
    }
}
