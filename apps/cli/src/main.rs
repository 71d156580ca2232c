//! `fibrpc`: the command line. Parses flags, connects through `fibrpc-app`, runs the protocol
//! from `fibrpc-rpc` (the bench from `fibrpc-bench`), and maps the outcome to an exit code.

mod args;
mod call;
mod demo;
mod procedures;
mod serve;

use std::process::ExitCode;

use clap::Parser;

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
            Command::Procedures(args) => procedures::run(args).await,
            Command::Bench(args) => fibrpc_bench::run(args).await,
            Command::BareEcho(args) => fibrpc_bench::bare_echo(args).await,
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

/// A server says what it does; the other commands speak up only for warnings. Each command
/// that makes calls or serves them exports its spans with `--otlp`.
fn init_logging(command: &Command) -> Result<Option<fibrpc_app::Exporting>, String> {
    let none = fibrpc_app::OtlpArgs::default();
    let (server, otlp, service) = match command {
        Command::Serve(args) => (true, &args.server.otlp, "fibrpc-server"),
        Command::Call(args) => (false, &args.otlp, "fibrpc-client"),
        Command::Bench(args) => (false, &args.otlp, "fibrpc-bench"),
        Command::BareEcho(_) => (true, &none, ""),
        Command::Demo(_) | Command::Procedures(_) => (false, &none, ""),
    };
    fibrpc_app::init_logging(server, otlp, service)
}
