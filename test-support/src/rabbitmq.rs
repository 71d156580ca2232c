//! RabbitMQ's command line, for what a client cannot do to its own connections.
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
    tokio::task::spawn_blocking(move || close_connections_named(&name))
        .await
        .map_err(|error| error.to_string())?
}

fn close_connections_named(name: &str) -> Result<usize, String> {
    let listing = Command::new("rabbitmqctl")
        .args([
            "list_connections",
            "-q",
            "--no-table-headers",
            "pid",
            "client_properties",
        ])
        .output()
        .map_err(|error| format!("cannot run rabbitmqctl: {error}"))?;
    let listing = String::from_utf8_lossy(&listing.stdout);
    let ours: Vec<&str> = listing
        .lines()
        .filter(|line| line.contains(name))
        .filter_map(|line| line.split_whitespace().next())
        .collect();
    for pid in &ours {
        Command::new("rabbitmqctl")
            .args(["close_connection", pid, "severed by a fibrpc test"])
            .output()
            .map_err(|error| format!("cannot run rabbitmqctl: {error}"))?;
    }
    Ok(ours.len())
}
