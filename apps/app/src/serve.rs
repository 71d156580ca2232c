//! A server binary's whole `main`: the flags of `fibrpc serve`, the connection, the metrics
//! endpoint, and graceful shutdown on SIGINT or SIGTERM, around a user's `Service`.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches, Parser};
use fibrpc_rpc::metrics::Registry;
use fibrpc_rpc::{Metrics, RpcServer, ServerConfig, Service};

use crate::flags::{BrokerArgs, RequestQueueArgs};
use crate::{init_logging, observe, shutdown, OtlpArgs};

/// What a server reads from its command line (and environment), as `fibrpc serve` does.
#[derive(Args, Clone)]
pub struct ServeArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Requests the broker hands this server before it acknowledges any.
    #[arg(long, default_value_t = 64)]
    pub prefetch: u16,
    /// Requests computed at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Largest request body read, in bytes; larger ones get an error reply.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_body: usize,
    /// Serve Prometheus metrics (`/metrics`) and health checks (`/healthz`, `/readyz`) over
    /// HTTP on this address, e.g. 127.0.0.1:9464 (port 0: any free port, printed).
    #[arg(long, value_name = "ADDRESS")]
    pub metrics: Option<std::net::SocketAddr>,
    /// No span per request: log lines about a request carry no `trace_id`, and the callers'
    /// traces stop here (ServerConfig::trace).
    #[arg(long)]
    pub no_trace: bool,
    #[command(flatten)]
    pub request_queue: RequestQueueArgs,
    #[command(flatten)]
    pub otlp: OtlpArgs,
}

/// The command line of a server built on [`serve`].
#[derive(Parser)]
struct ServerCommand {
    #[command(flatten)]
    args: ServeArgs,
}

/// A server binary's `main`: reads the flags of `fibrpc serve` (but `--max-n`, fib's own)
/// from the command line and the environment, logs to stderr, connects, serves `service` on
/// `--queue` until SIGINT or SIGTERM, finishes the requests in flight, and returns the exit
/// code. Failures are one line on stderr.
///
/// ```no_run
/// fn main() -> std::process::ExitCode {
///     let service = fibrpc_rpc::Service::new(());
///     fibrpc_app::serve(service)
/// }
/// ```
pub fn serve<S: Send + Sync + 'static>(service: Service<S>) -> ExitCode {
    let program = std::env::args()
        .next()
        .and_then(|path| {
            let name = std::path::Path::new(&path).file_name()?;
            Some(name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "server".to_owned());
    let command = ServerCommand::command()
        .bin_name(program.clone())
        .about("Serves RPC requests from a queue until SIGINT or SIGTERM");
    let parsed = ServerCommand::from_arg_matches(&command.get_matches());
    let args = match parsed {
        Ok(parsed) => parsed.args,
        Err(error) => error.exit(),
    };
    // Kept until the server stopped: dropping it sends the spans still queued.
    let _exporting = match init_logging(true, &args.otlp, &program) {
        Ok(exporting) => exporting,
        Err(message) => {
            eprintln!("{program}: {message}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(serve_with(args, service)),
        Err(error) => Err(format!("cannot start the async runtime: {error}")),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("{program}: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Serves `service` as `args` say, until SIGINT or SIGTERM: `fibrpc serve` and [`serve`]
/// both run this. Prints " [x] Awaiting RPC requests" once it consumes (scripts wait for
/// it), and how many replies it sent when it stops.
///
/// # Errors
/// One line: a metrics address that cannot be bound, flags that do not fit the transport, a
/// connection or a request queue that cannot be had.
pub async fn serve_with<S: Send + Sync + 'static>(
    args: ServeArgs,
    service: Service<S>,
) -> Result<(), String> {
    // Bound first: an address in use fails at once, before the broker is involved.
    let endpoint = match args.metrics {
        Some(address) => Some(observe::bind(address).await?),
        None => None,
    };
    let mut registry = Registry::default();
    let metrics = endpoint.is_some().then(|| Metrics::register(&mut registry));
    let connection = args.broker.connect_server(&args.request_queue).await?;
    let config = ServerConfig {
        queue: args.broker.queue.clone(),
        prefetch: args.prefetch,
        concurrency: args.concurrency,
        max_body_bytes: args.max_body,
        metrics,
        trace: !args.no_trace,
        ..ServerConfig::default()
    };
    let server = RpcServer::new(connection.replies, config, service);
    if let Some(listener) = endpoint {
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        observe::spawn(listener, Arc::new(registry), server.readiness());
        println!(" [x] Metrics on http://{address}/metrics");
    }
    let stats = server.stats();
    let ready = async {
        // Tests and scripts wait for this line before sending requests.
        println!(" [x] Awaiting RPC requests");
        shutdown::signalled().await;
    };
    server.run(ready).await.map_err(|error| error.to_string())?;
    println!(
        " [x] Stopped after {} replies ({} of them errors)",
        stats.answered() + stats.error_replies(),
        stats.error_replies()
    );
    Ok(())
}
