//! fib and a second service, text statistics, served side by side on one queue and called by
//! one client:
//!
//! ```sh
//! cargo run --release --example services                       # in-memory broker
//! cargo run --release --example services -- --transport amqp   # RabbitMQ on 127.0.0.1:5672
//! cargo run --release --example services -- --url nats://127.0.0.1:4222
//! ```
//!
//! `--amqp-url URL` (or `AMQP_URL`; `NATS_URL`, `REDIS_URL`) names another broker; `--url`
//! any, its scheme choosing the transport. The queue is made for the run and deleted after it.
//!
//! With `serve`, it is a server of its own instead, for clients in any language: fib and the
//! text statistics on `--queue` until SIGINT or SIGTERM, with the flags of `fibrpc serve`:
//!
//! ```sh
//! cargo run --release --example services -- serve --transport amqp --queue Q
//! ```

use std::process::ExitCode;

use clap::Parser;
use fibrpc_app::{transport_named, ServeArgs, Transport};
use fibrpc_examples::session;

/// The broker's URL the flags give: `--url`, else `--transport`'s (its variable, or
/// `--amqp-url` for RabbitMQ), else the in-memory broker.
fn parse(mut args: impl Iterator<Item = String>) -> Result<String, String> {
    let mut amqp_url = None;
    let mut transport = "memory".to_owned();
    let mut url = None;
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--transport" => transport = value()?,
            "--amqp-url" => amqp_url = Some(value()?),
            "--url" => url = Some(value()?),
            _ => {
                return Err(format!(
                    "unknown argument {arg:?} (--transport memory|amqp|nats|redis, --amqp-url URL, --url URL)"
                ))
            }
        }
    }
    if let Some(url) = url {
        return Ok(url);
    }
    let transport = transport_named(&transport)
        .ok_or_else(|| format!("unknown transport {transport:?} (memory, amqp, nats, redis)"))?;
    match (transport.name, amqp_url) {
        ("amqp", Some(url)) => Ok(url),
        _ => Ok(url_of(transport)),
    }
}

/// A transport's URL from its environment variable (`AMQP_URL`, ...), else its default.
fn url_of(transport: &Transport) -> String {
    transport
        .url_flag
        .and_then(|flag| std::env::var(flag.env).ok())
        .unwrap_or_else(|| transport.default_url())
}

async fn run(url: &str) -> Result<(), String> {
    let queue = format!("fibrpc.example.services.{}", uuid::Uuid::new_v4().simple());
    let connection = fibrpc_app::connect(url)
        .await
        .map_err(|error| error.to_string())?;
    let admin = &connection.admin;
    admin
        .declare_request_queue(&queue)
        .await
        .map_err(|error| error.to_string())?;
    let outcome = session::run(&connection, &queue, &mut std::io::stdout()).await;
    if let Err(error) = admin.delete_queue(&queue).await {
        eprintln!("services: could not delete the queue {queue}: {error}");
    }
    outcome
}

/// `services serve`'s command line: `fibrpc serve`'s flags.
#[derive(Parser)]
#[command(
    name = "services serve",
    about = "Serves fib and text statistics until SIGINT or SIGTERM"
)]
struct ServeCommand {
    #[command(flatten)]
    args: ServeArgs,
}

#[tokio::main]
async fn main() -> ExitCode {
    let mut args = std::env::args().skip(1).peekable();
    let outcome = if args.peek().is_some_and(|arg| arg == "serve") {
        let command = ServeCommand::parse_from(args);
        // Kept until the server stops: dropping it sends the spans still queued.
        match fibrpc_app::init_logging(true, &command.args.otlp, "services") {
            Ok(_exporting) => fibrpc_app::serve_with(command.args, session::service()).await,
            Err(error) => Err(error),
        }
    } else {
        match parse(args) {
            Ok(url) => run(&url).await,
            Err(error) => Err(error),
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("services: {error}");
            ExitCode::FAILURE
        }
    }
}
