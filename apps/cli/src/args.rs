//! The command line's flags.

use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::transport::{self, Choice, Urls};

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
    Serve(ServeArgs),
    /// Calls fib(n) for each N; prints one decimal value per line.
    Call(CallArgs),
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

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplyToMode {
    /// An exclusive, auto-delete reply queue per client (the tutorial's callback queue).
    Exclusive,
    /// RabbitMQ's direct reply-to pseudo-queue.
    Direct,
}

/// Where the brokers are. Their passwords are never printed, nor the environment's values.
#[derive(Args)]
pub struct BrokerUrls {
    /// `--<transport>-url` (and its variable) for each registered transport.
    #[command(flatten)]
    pub urls: Urls,
    /// Try the AMQP addresses in a random order, so that many processes spread over the
    /// nodes (default: the order given, nearest first).
    #[arg(long, env = "AMQP_SHUFFLE", value_parser = clap::builder::BoolishValueParser::new())]
    pub amqp_shuffle: bool,
}

/// Where the broker is and which queue carries the requests.
#[derive(Args)]
pub struct BrokerArgs {
    /// The broker's adapter.
    #[arg(long, default_value = "amqp", value_parser = transport::parser(false))]
    pub transport: Choice,
    #[command(flatten)]
    pub urls: BrokerUrls,
    /// The request queue.
    #[arg(long, default_value = "rpc_queue")]
    pub queue: String,
    /// A PEM file of CA certificates to trust for `amqps://` (besides the system's).
    #[arg(long, env = "FIBRPC_TLS_CA")]
    pub tls_ca: Option<std::path::PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueType {
    /// A classic queue, as the tutorial declares it.
    Classic,
    /// A replicated quorum queue (always durable).
    Quorum,
}

/// How `serve` declares the request queue if it does not exist. An existing queue is used as
/// it is, whatever its type and arguments. RabbitMQ only.
#[derive(Args, Default)]
#[command(next_help_heading = "Request queue, declared only if missing (RabbitMQ)")]
pub struct RequestQueueArgs {
    /// The queue's type [default: classic].
    #[arg(long, value_enum, value_name = "TYPE")]
    pub queue_type: Option<QueueType>,
    /// Make it survive a broker restart (quorum queues always do).
    #[arg(long)]
    pub durable: bool,
    /// Where requests go when dead-lettered (past the delivery limit, expired, rejected).
    #[arg(long, value_name = "EXCHANGE")]
    pub dead_letter_exchange: Option<String>,
    /// Quorum only: a request returned to the queue more than N times (its server died or
    /// gave it back) is dead-lettered instead of delivered again.
    #[arg(long, value_name = "N")]
    pub delivery_limit: Option<u32>,
}

impl RequestQueueArgs {
    /// The flags given, by name, for an error message.
    pub fn given(&self) -> Vec<&'static str> {
        let flags = [
            (self.queue_type.is_some(), "--queue-type"),
            (self.durable, "--durable"),
            (
                self.dead_letter_exchange.is_some(),
                "--dead-letter-exchange",
            ),
            (self.delivery_limit.is_some(), "--delivery-limit"),
        ];
        flags
            .into_iter()
            .filter_map(|(given, name)| given.then_some(name))
            .collect()
    }

    /// The flags again, for a `fibrpc serve` or `fibrpc bare-echo` the bench starts.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(kind) = self.queue_type {
            let kind = match kind {
                QueueType::Classic => "classic",
                QueueType::Quorum => "quorum",
            };
            args.extend(["--queue-type".to_owned(), kind.to_owned()]);
        }
        if self.durable {
            args.push("--durable".to_owned());
        }
        if let Some(exchange) = &self.dead_letter_exchange {
            args.extend(["--dead-letter-exchange".to_owned(), exchange.clone()]);
        }
        if let Some(limit) = self.delivery_limit {
            args.extend(["--delivery-limit".to_owned(), limit.to_string()]);
        }
        args
    }
}

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// Requests the broker hands this server before it acknowledges any.
    #[arg(long, default_value_t = 64)]
    pub prefetch: u16,
    /// Requests computed at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Largest n answered; larger ones get an error reply.
    #[arg(long, default_value_t = fibrpc_domain::DEFAULT_MAX_N)]
    pub max_n: u64,
    /// Largest request body read, in bytes; larger ones get an error reply.
    #[arg(long, default_value_t = 64 * 1024)]
    pub max_body: usize,
    /// Serve Prometheus metrics (`/metrics`) and health checks (`/healthz`, `/readyz`) over
    /// HTTP on this address, e.g. 127.0.0.1:9464 (port 0: any free port, printed).
    #[arg(long, value_name = "ADDRESS")]
    pub metrics: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub request_queue: RequestQueueArgs,
    #[command(flatten)]
    pub otlp: OtlpArgs,
}

/// Where spans are exported, if anywhere.
#[derive(Args)]
pub struct OtlpArgs {
    /// Export the calls' and requests' spans over OTLP/HTTP to the collector at this base
    /// URL, e.g. http://127.0.0.1:4318 (spans go to URL/v1/traces). The service is named by
    /// OTEL_SERVICE_NAME, else fibrpc-server, fibrpc-client or fibrpc-bench.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp: Option<String>,
}

#[derive(Args)]
pub struct CallArgs {
    #[command(flatten)]
    pub broker: BrokerArgs,
    /// The indices to ask for.
    #[arg(required = true)]
    pub numbers: Vec<u64>,
    /// How long each call waits for its reply: `5s`, `500ms`, or seconds (`2.5`).
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Send the tutorial's decimal text instead of bincode.
    #[arg(long)]
    pub text: bool,
    /// Where replies come to.
    #[arg(long, value_enum, default_value = "exclusive")]
    pub reply_to: ReplyToMode,
    /// Send a call again after a lost connection, within its deadline (fib is idempotent).
    #[arg(long)]
    pub retry: bool,
    #[command(flatten)]
    pub otlp: OtlpArgs,
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_seconds) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 5s, 500ms or 2.5)"))?;
    Duration::try_from_secs_f64(value * unit_seconds)
        .map_err(|_| format!("{text:?} is not a usable duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_three_forms() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn the_command_line_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}

#[derive(Args)]
pub struct BenchArgs {
    /// The broker's adapter.
    #[arg(long, default_value = "memory", value_parser = transport::parser(true))]
    pub transport: Choice,
    #[command(flatten)]
    pub urls: BrokerUrls,
    /// Calls measured per run.
    #[arg(long, default_value_t = 20_000)]
    pub calls: u64,
    /// Calls in flight at once; a list (`1,16,64,256`) runs each level in turn.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    pub concurrency: Vec<usize>,
    /// Runs per level: baseline, fibrpc, baseline, fibrpc, ... with each round's ratios and
    /// their median.
    #[arg(long, default_value_t = 1)]
    pub rounds: u32,
    /// Clients (each with its own connection and reply queue) sharing the calls.
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Servers (and bare echo servers for `--baseline`); 0 to measure servers started
    /// elsewhere (give `--queue`, and `--baseline-queue` with `--baseline`).
    #[arg(long, default_value_t = 1)]
    pub servers: usize,
    /// Run the servers as child processes (`fibrpc serve`, `fibrpc bare-echo`), as deployed,
    /// instead of inside the bench process.
    #[arg(long)]
    pub server_process: bool,
    /// The request queue of servers started elsewhere (default: a fresh one, deleted afterwards).
    #[arg(long)]
    pub queue: Option<String>,
    /// The queue of a `fibrpc bare-echo` started elsewhere, for `--servers 0 --baseline`.
    #[arg(long)]
    pub baseline_queue: Option<String>,
    /// The n of every call.
    #[arg(long, default_value_t = 30)]
    pub n: u64,
    #[arg(long, value_enum, default_value = "exclusive")]
    pub reply_to: ReplyToMode,
    /// Each server's prefetch, fibrpc's and the bare echo's (default: the largest
    /// `--concurrency`, at least 64).
    #[arg(long)]
    pub prefetch: Option<u16>,
    /// Each fibrpc server's concurrency (default: as the prefetch).
    #[arg(long)]
    pub server_concurrency: Option<usize>,
    /// Calls before each measured run, not counted.
    #[arg(long, default_value_t = 1000)]
    pub warmup: u64,
    /// How long each fibrpc call may take: `30s`, `500ms`, or seconds.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Send a call again after a lost connection, within its deadline (`fibrpc call --retry`).
    #[arg(long)]
    pub retry: bool,
    /// Also run a bare request/reply over the same transport and print the ratios.
    #[arg(long)]
    pub baseline: bool,
    /// Write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
    /// Draw the results as SVG: latency percentiles for one level, throughput for a sweep.
    #[arg(long)]
    pub plot: Option<std::path::PathBuf>,
    /// Time fib(n) computed and rendered to decimal, with no transport at all.
    #[arg(long)]
    pub domain: bool,
    /// Count fibrpc's calls and requests in Prometheus metrics, as `serve --metrics` does,
    /// to measure what that costs.
    #[arg(long)]
    pub metrics: bool,
    /// How the request queues (fibrpc's and the baseline's) are declared.
    #[command(flatten)]
    pub request_queue: RequestQueueArgs,
    /// Servers run with `--server-process` export to the same collector.
    #[command(flatten)]
    pub otlp: OtlpArgs,
}

#[derive(Args)]
pub struct BareEchoArgs {
    /// The broker's adapter.
    #[arg(long, default_value = "amqp", value_parser = transport::parser(false))]
    pub transport: Choice,
    #[command(flatten)]
    pub urls: BrokerUrls,
    /// The request queue (AMQP) or subject (NATS) to answer on.
    #[arg(long)]
    pub queue: String,
    /// Requests the broker hands the server before it acknowledges any (AMQP).
    #[arg(long, default_value_t = 256)]
    pub prefetch: u16,
    #[command(flatten)]
    pub request_queue: RequestQueueArgs,
}
