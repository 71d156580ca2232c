//! RabbitMQ's command line, for what a client cannot do to its own connections and what a
//! passive declare does not show (messages delivered but unacknowledged).
//!
//! Only ever by connection name: tests run side by side on one shared broker, and must sever
//! their own connections and nobody else's.

use std::process::Command;

/// Whether `rabbitmqctl` can be run here (it needs the node's Erlang cookie).
pub fn have_rabbitmqctl() -> bool {
    Command::new("rabbitmqctl")
        .args(["list_connections", "-q", "name"])
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Closes the broker connections whose client properties carry `name` (a connection name
/// unique to the test), and only those; returns how many it closed.
///
/// # Errors
/// Why `rabbitmqctl` could not be run.
pub async fn sever_connections_named(name: &str) -> Result<usize, String> {
    let name = name.to_owned();
    off_the_runtime(move || close_connections_named(&name)).await
}

fn close_connections_named(name: &str) -> Result<usize, String> {
    // A connection that ended between the listing and its close is not counted.
    let closed = pids_named(name)?
        .iter()
        .filter(|pid| rabbitmqctl(&["close_connection", pid, "severed by a fibrpc test"]).is_ok())
        .count();
    Ok(closed)
}

/// How many broker connections carry `name` in their client properties.
///
/// # Errors
/// Why `rabbitmqctl` could not be run.
pub async fn connections_named(name: &str) -> Result<usize, String> {
    let name = name.to_owned();
    off_the_runtime(move || pids_named(&name).map(|pids| pids.len())).await
}

fn pids_named(name: &str) -> Result<Vec<String>, String> {
    let listing = rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "pid",
        "client_properties",
    ])?;
    Ok(listing
        .lines()
        .filter(|line| line.contains(name))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect())
}

/// What RabbitMQ holds of a queue. A passive declare counts only `ready`; a request
/// delivered but not yet acknowledged is in `unacked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueState {
    pub ready: u64,
    pub unacked: u64,
    pub consumers: u64,
}

impl QueueState {
    /// Nothing ready, nothing unacknowledged, no consumer.
    pub const IDLE: Self = Self {
        ready: 0,
        unacked: 0,
        consumers: 0,
    };
}

/// The state of `queue` (in the default vhost), or None when no queue has that name.
///
/// # Errors
/// Why `rabbitmqctl` could not be run or its listing read.
pub async fn queue_state(queue: &str) -> Result<Option<QueueState>, String> {
    let queue = queue.to_owned();
    off_the_runtime(move || read_queue_state(&queue)).await
}

fn read_queue_state(queue: &str) -> Result<Option<QueueState>, String> {
    let listing = rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
    ])?;
    for line in listing.lines() {
        let fields: Vec<&str> = line.split('\t').map(str::trim).collect();
        let [name, ready, unacked, consumers] = fields[..] else {
            continue;
        };
        if name != queue {
            continue;
        }
        let number = |field: &str| {
            field
                .parse::<u64>()
                .map_err(|_| format!("rabbitmqctl list_queues: unreadable line {line:?}"))
        };
        return Ok(Some(QueueState {
            ready: number(ready)?,
            unacked: number(unacked)?,
            consumers: number(consumers)?,
        }));
    }
    Ok(None)
}

/// Runs `work` (which waits on `rabbitmqctl`) on a thread of its own, not the runtime's.
async fn off_the_runtime<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| error.to_string())?
}

/// Runs `rabbitmqctl` with `args`; its standard output, or why it failed.
fn rabbitmqctl(args: &[&str]) -> Result<String, String> {
    let output = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map_err(|error| format!("cannot run rabbitmqctl: {error}"))?;
    if !output.status.success() {
        return Err(format!(
            "rabbitmqctl {}: {}",
            args.first().unwrap_or(&""),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
