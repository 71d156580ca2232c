//! The command line's flags.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use fibrpc_app::{parse_duration, BrokerArgs, ReplyToMode};
use fibrpc_bench::{BareEchoArgs, BenchArgs};

#[derive(Parser)]
#[command(
    name = "fibrpc",
    version,
    about = "Remote procedure calls of fib(n) over a message broker"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Runs a server and a client in one process over the in-memory broker (no broker needed).
    Demo(DemoArgs),
    /// Serves fib(n) from the request queue until SIGINT or SIGTERM.
    Serve(FibServeArgs),
    /// Calls fib(n) for each N, one decimal value per line; or, with `--procedure NAME --json
    /// VALUE`, any procedure by name, printing its JSON reply.
    Call(CallArgs),
    /// Lists the procedures the servers of a queue serve (the built-in `fibrpc.procedures`).
    Procedures(ProceduresArgs),
    /// Measures calls/s, latency and CPU per call; `--baseline` compares with a bare round trip.
    Bench(BenchArgs),
    /// Runs the bare request/reply echo server `fibrpc bench --baseline` measures against, alone.
    BareEcho(BareEchoArgs),
}

#[derive(Args)]
pub struct DemoArgs {
    /// The indices to ask for.
    #[arg(default_values_t = [30u64])]
    pub numbers: Vec<u64>,
}

/// `fibrpc serve`: a server's flags, and fib's bound.
#[derive(Args)]
pub struct FibServeArgs {
    #[command(flatten)]
    pub server: fibrpc_app::ServeArgs,
    /// Largest n answered; larger ones get an error reply.
    #[arg(long, default_value_t = fibrpc_domain::DEFAULT_MAX_N)]
    pub max_n: u64,
}

#[derive(Args)]
pub struct ProceduresArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// How long to wait for the answer: `5s`, `500ms`, or seconds (`2.5`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Args)]
pub struct CallArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The indices to ask for.
    #[arg(required_unless_present = "procedure", conflicts_with = "procedure")]
    pub numbers: Vec<u64>,
    /// The procedure to call by name (`text.count`), with the JSON body `--json`, whatever
    /// its types; its JSON reply is printed as it came.
    #[arg(long, requires = "json", conflicts_with = "text")]
    pub procedure: Option<String>,
    /// The request of `--procedure`, as JSON (`'"a b c"'`, `30`, `{"n": 1}`).
    #[arg(long, value_name = "VALUE", requires = "procedure")]
    pub json: Option<String>,
    /// How long each call waits for its reply: `5s`, `500ms`, or seconds (`2.5`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Send the tutorial's decimal text instead of bincode.
    #[arg(long)]
    pub text: bool,
    /// Where replies come to.
    #[arg(long, value_enum, default_value = "queue")]
    pub reply_to: ReplyToMode,
    /// Send the calls waiting to be sent together, up to N per message (docs/wire.md,
    /// "Several calls in one message"); only fibrpc servers read such messages.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub batch: Option<u16>,
    /// Send a call again after a lost connection, within its deadline (fib is idempotent).
    #[arg(long)]
    pub retry: bool,
    #[command(flatten)]
    pub otlp: fibrpc_app::OtlpArgs,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
