//! `fibrpc`: the command line. Parses flags, builds the transport, runs the protocol from
//! `fibrpc-rpc`, and maps the outcome to an exit code.

mod args;
mod bare_echo;
mod bench;
mod call;
mod demo;
mod observe;
mod registry;
mod serve;
mod shutdown;
mod transport;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.command);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}")),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Call(args) => call::run(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::BareEcho(args) => bare_echo::run(args).await,
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => fail(&message),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("fibrpc: {message}");
    ExitCode::FAILURE
}

/// Logs go to stderr so stdout carries only results. A server says what it does by default;
/// the other commands speak up only for warnings, unless `RUST_LOG` says otherwise.
fn init_logging(command: &Command) {
    // A normal run makes lapin log nothing at WARN or ERROR, but a refused login makes it log
    // three ERROR lines (and a queue declared elsewhere with other arguments one) that the
    // adapter reports as one typed error: see docs/observability.md. So lapin is silent by
    // default; `RUST_LOG=info,lapin=debug` shows it.
    let default = match command {
        Command::Serve(_) | Command::BareEcho(_) => "info,lapin=off",
        _ => "warn,lapin=off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}
