//! `fibrpc`: the command line. Parses flags, connects through `fibrpc-app`, runs the protocol
//! from `fibrpc-rpc` (the bench from `fibrpc-bench`), and maps the outcome to an exit code.

mod args;
mod call;
mod demo;
mod serve;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    // A server says what it does; the other commands speak up only for warnings.
    fibrpc_app::init_logging(matches!(
        cli.command,
        Command::Serve(_) | Command::BareEcho(_)
    ));
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the async runtime: {error}")),
    };
    let outcome = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Serve(args) => serve::run(args).await,
            Command::Call(args) => call::run(args).await,
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
