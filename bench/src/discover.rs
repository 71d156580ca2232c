//! Finding the processes whose CPU time a call costs, when the bench did not start them: the
//! broker (by the local port it listens on, else by its name) and servers started by the
//! user (by the queue on their command line).

use std::collections::HashSet;
use std::path::Path;

/// The broker processes behind `urls` (comma-separated, as a cluster's address list), when
/// they run on this machine and /proc shows them.
pub(crate) fn brokers(urls: &str, name_hint: BrokerName) -> Vec<u32> {
    let ports: Vec<u16> = urls
        .split(',')
        .filter_map(|url| local_port(url.trim(), name_hint.ports))
        .collect();
    if ports.is_empty() {
        return Vec::new();
    }
    let by_port: Vec<u32> = ports
        .iter()
        .filter_map(|&port| listener_of(port))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if !by_port.is_empty() {
        return by_port;
    }
    // Sockets of other users' processes are hidden to non-root: fall back to the name, if it
    // is unambiguous.
    let named = processes_where(|args| name_hint.matches(args));
    if named.len() == 1 {
        named
    } else {
        Vec::new()
    }
}

/// How a broker's process is recognised by its command line: a word its program contains
/// (Redis rewrites its command line: `redis-server 127.0.0.1:6379` in one argument), and a
/// word one of its arguments contains (RabbitMQ is Erlang's `beam.smp` running `rabbit`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BrokerName {
    program: &'static str,
    argument: Option<&'static str>,
    /// The port a URL of each scheme means when it names none.
    ports: &'static [(&'static str, u16)],
}

impl BrokerName {
    pub(crate) const fn new(
        program: &'static str,
        argument: Option<&'static str>,
        ports: &'static [(&'static str, u16)],
    ) -> Self {
        Self {
            program,
            argument,
            ports,
        }
    }

    fn matches(self, args: &[String]) -> bool {
        let program = args.first().map(String::as_str).unwrap_or("");
        program.contains(self.program)
            && self
                .argument
                .is_none_or(|word| args.iter().any(|arg| arg.contains(word)))
    }
}

/// Processes other than this one with `--queue QUEUE` on their command line: `fibrpc serve`
/// and `fibrpc bare-echo` started by the user.
pub(crate) fn serving(queue: &str) -> Vec<u32> {
    processes_where(|args| names_queue(args, queue))
}

fn names_queue(args: &[String], queue: &str) -> bool {
    args.windows(2)
        .any(|pair| pair[0] == "--queue" && pair[1] == queue)
        || args
            .iter()
            .any(|arg| arg.strip_prefix("--queue=") == Some(queue))
}

/// The port of `url` if its host is this machine; without one, its scheme's in `ports`.
pub(crate) fn local_port(url: &str, ports: &[(&str, u16)]) -> Option<u16> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        (host, after.strip_prefix(':'))
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        }
    };
    if !matches!(host, "127.0.0.1" | "localhost" | "::1" | "") {
        return None;
    }
    match port {
        Some(port) => port.parse().ok(),
        None => ports
            .iter()
            .find(|(name, _)| *name == scheme)
            .map(|&(_, port)| port),
    }
}

/// The process listening on TCP `port`: the socket's inode from /proc/net/tcp{,6}, then the
/// process holding that socket.
fn listener_of(port: u16) -> Option<u32> {
    let inodes: HashSet<u64> = ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|table| std::fs::read_to_string(table).ok())
        .flat_map(|table| listening_inodes(&table, port))
        .collect();
    if inodes.is_empty() {
        return None;
    }
    pids().into_iter().find(|&pid| {
        let Ok(fds) = std::fs::read_dir(Path::new("/proc").join(pid.to_string()).join("fd")) else {
            return false;
        };
        fds.flatten().any(|fd| {
            std::fs::read_link(fd.path()).is_ok_and(|target| {
                let target = target.to_string_lossy();
                target
                    .strip_prefix("socket:[")
                    .and_then(|rest| rest.strip_suffix(']'))
                    .and_then(|inode| inode.parse().ok())
                    .is_some_and(|inode: u64| inodes.contains(&inode))
            })
        })
    })
}

/// Inodes of the listening sockets on `port` in a /proc/net/tcp table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields.get(1)?.rsplit_once(':')?.1;
            let listening = *fields.get(3)? == LISTEN;
            (listening && u16::from_str_radix(local_port, 16).ok()? == port)
                .then(|| fields.get(9)?.parse().ok())
                .flatten()
        })
        .collect()
}

fn pids() -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_string_lossy().parse().ok())
        .collect()
}

fn processes_where(matches: impl Fn(&[String]) -> bool) -> Vec<u32> {
    let me = std::process::id();
    pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            std::fs::read(Path::new("/proc").join(pid.to_string()).join("cmdline")).is_ok_and(
                |raw| {
                    let args: Vec<String> = raw
                        .split(|&byte| byte == 0)
                        .filter(|arg| !arg.is_empty())
                        .map(|arg| String::from_utf8_lossy(arg).into_owned())
                        .collect();
                    matches(&args)
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_ports_come_from_the_url_or_the_scheme() {
        let ports = &[("amqp", 5672), ("amqps", 5671), ("nats", 4222)];
        let local_port = |url| local_port(url, ports);
        assert_eq!(local_port("amqp://127.0.0.1:5672/%2f"), Some(5672));
        assert_eq!(local_port("amqp://guest:p:w@localhost/%2f"), Some(5672));
        assert_eq!(local_port("amqps://u:p@127.0.0.1/vh"), Some(5671));
        assert_eq!(local_port("nats://127.0.0.1:4223"), Some(4223));
        assert_eq!(local_port("nats://[::1]:4222"), Some(4222));
        assert_eq!(local_port("redis://127.0.0.1"), None);
        assert_eq!(local_port("amqp://rabbit.example.com:5672/%2f"), None);
        assert_eq!(local_port("not a url"), None);
    }

    #[test]
    fn listening_sockets_are_told_from_connections() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1628 00000000:0000 0A 00000000:00000000 00:00000000 00000000   118        0 31337 1 0
   1: 0100007F:1628 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000   118        0 31338 1 0
   2: 0100007F:108E 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0";
        assert_eq!(listening_inodes(table, 5672), vec![31337]);
        assert_eq!(listening_inodes(table, 4238), vec![4242]);
        assert!(listening_inodes(table, 80).is_empty());
    }

    #[test]
    fn servers_are_found_by_the_queue_they_name() {
        let args = |line: &str| line.split(' ').map(str::to_owned).collect::<Vec<_>>();
        assert!(names_queue(
            &args("fibrpc serve --queue q1 --prefetch 8"),
            "q1"
        ));
        assert!(names_queue(&args("fibrpc bare-echo --queue=q1"), "q1"));
        assert!(!names_queue(&args("fibrpc serve --queue q10"), "q1"));
        let rabbit = BrokerName::new("beam.smp", Some("rabbit"), &[]);
        assert!(rabbit.matches(&args("/usr/lib/erlang/bin/beam.smp -- -s rabbit boot")));
        assert!(!rabbit.matches(&args("/usr/bin/beam.smp -s other")));
        let nats = BrokerName::new("nats-server", None, &[]);
        assert!(nats.matches(&args("/usr/sbin/nats-server -p 4222")));
    }
}
