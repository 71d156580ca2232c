//! The `services` example's session: fib and text statistics served side by side on one
//! queue, called by one client, over whatever transport it is given.

use std::io::Write;

use fibrpc_domain::Fibonacci;
use fibrpc_fib::Fib;
use fibrpc_ports::Connection;
use fibrpc_rpc::{
    CallError, ClientConfig, Fault, Procedure, RpcClient, RpcServer, ServerConfig, Service,
};

use crate::text::{self, Count, Counts, TextError, Top};

/// The bound on a text, low enough to show the error.
pub const MAX_CHARS: u64 = 1000;

/// What the example serves: fib (also for unnamed requests, as `fibrpc serve`) and text
/// statistics, on one queue.
pub fn service() -> Service<Fibonacci> {
    Fib::service(Fibonacci::default()).merge(text::service(MAX_CHARS))
}

/// A procedure no server of the session hosts.
struct Missing;

impl Procedure for Missing {
    const NAME: &'static str = "example.missing";
    type Request = ();
    type Response = ();
    type Error = TextError;
}

/// Serves fib and text statistics on `queue` (which must exist) over `connection`, calls
/// them through it, and writes each call and its answer to `out`.
///
/// # Errors
/// What failed, in one line: an answer other than the one expected, a failed call, a server
/// that did not stop.
pub async fn run(connection: &Connection, queue: &str, out: &mut impl Write) -> Result<(), String> {
    let config = ServerConfig {
        queue: queue.to_owned(),
        ..ServerConfig::default()
    };
    let server = RpcServer::new(connection.replies.clone(), config, service()).spawn();
    let config = ClientConfig {
        queue: queue.to_owned(),
        ..ClientConfig::default()
    };
    let client = RpcClient::connect(connection.requests.clone(), config)
        .await
        .map_err(|error| error.to_string())?;
    let outcome = calls(&client, out).await;
    server.stop().await.map_err(|error| error.to_string())?;
    outcome
}

async fn calls(client: &RpcClient, out: &mut impl Write) -> Result<(), String> {
    let mut say = |line: String| writeln!(out, "{line}").map_err(|error| error.to_string());
    let failed = |what: &str, error: &dyn std::fmt::Display| format!("{what}: {error}");

    let value = client
        .call::<Fib>(30)
        .await
        .map_err(|error| failed("fib(30)", &error))?;
    check(value.to_string() == "832040", "fib(30)")?;
    say(format!("fib(30) = {value}"))?;

    for text in [
        "the quick brown fox jumps over the lazy dog",
        "The dog sleeps.\nThe fox runs.",
    ] {
        let counts = client
            .call::<Count>(text.to_owned())
            .await
            .map_err(|error| failed("text.count", &error))?;
        say(format!("text.count({text:?}) = {}", describe(counts)))?;
    }

    let top = client
        .call::<Top>(3)
        .await
        .map_err(|error| failed("text.top", &error))?;
    check(
        top.first()
            .is_some_and(|(word, count)| word == "the" && *count == 4),
        "text.top(3)",
    )?;
    let listed: Vec<String> = top
        .iter()
        .map(|(word, count)| format!("{word} {count}"))
        .collect();
    say(format!("text.top(3) = {}", listed.join(", ")))?;

    // The procedure's own error, typed.
    let long = "word ".repeat(400);
    match client.call::<Count>(long).await {
        Err(CallError::Remote(error @ TextError::TooLong { .. })) => {
            say(format!("text.count(<2,000 characters>) = error: {error}"))?;
        }
        other => return Err(format!("text.count of a long text: {other:?}")),
    }

    // A procedure the server does not host: an error reply at once, not a timeout.
    match client.call::<Missing>(()).await {
        Err(CallError::Fault(fault @ Fault::UnknownProcedure { .. })) => {
            say(format!("{}() = error: {fault}", Missing::NAME))?;
        }
        other => return Err(format!("{}: {other:?}", Missing::NAME)),
    }
    Ok(())
}

fn describe(counts: Counts) -> String {
    let plural =
        |count: u64, what: &str| format!("{count} {what}{}", if count == 1 { "" } else { "s" });
    format!(
        "{}, {}, {}",
        plural(counts.lines, "line"),
        plural(counts.words, "word"),
        plural(counts.chars, "character")
    )
}

fn check(holds: bool, what: &str) -> Result<(), String> {
    if holds {
        Ok(())
    } else {
        Err(format!("{what}: not the expected answer"))
    }
}
