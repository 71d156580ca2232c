//! `fibrpc`: the command line. Parses flags, builds the transport, runs the protocol from
//! `fibrpc-rpc`, and maps the outcome to an exit code.

mod args;
mod bare_echo;
mod bench;
mod call;
mod demo;
mod observe;
mod otlp;
mod registry;
mod serve;
mod shutdown;
mod transport;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::Layer as _;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Kept to the end of `main`: dropping it sends the spans still queued.
    let _exporting = match init_logging(&cli.command) {
        Ok(exporting) => exporting,
        Err(message) => return fail(&message),
    };
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
/// the other commands speak up only for warnings, unless `RUST_LOG` says otherwise. With
/// `--otlp`, spans are exported too.
fn init_logging(command: &Command) -> Result<Option<fibrpc_otel::Exporting>, String> {
    // lapin logs each channel or connection the broker closes (at ERROR) and each returned
    // message: the adapter turns every one of those into the typed error that fibrpc reports
    // in one line, and a passive declare of a missing queue is no error at all. So lapin is
    // silent by default; `RUST_LOG=info,lapin=debug` shows it.
    let default = match command {
        Command::Serve(_) | Command::BareEcho(_) => "info,lapin=off",
        _ => "warn,lapin=off",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    let (export, exporting) = otlp::layer(command)?.unzip();
    tracing_subscriber::registry().with(log).with(export).init();
    Ok(exporting)
}
