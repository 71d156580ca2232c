//! The flags of `fibrpc bench` and `fibrpc bare-echo`.

use std::time::Duration;

use clap::{Args, ValueEnum};
use fibrpc_app::{parse_duration, BrokerUrls, ReplyToMode, RequestQueueArgs, TransportChoice};

#[derive(Args, Clone)]
pub struct BenchArgs {
    /// The broker's adapter.
    #[arg(long, default_value = "memory", value_parser = TransportChoice::parser(true))]
    pub transport: TransportChoice,
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
    #[arg(long, value_enum, default_value = "queue")]
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
    /// Also measure fibrpc with coalesced requests, up to N calls per message (`fibrpc call
    /// --batch`), on servers of its own, in each round after fibrpc.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub batch: Option<u16>,
    /// With `--batch`: request messages being sent at once by each client.
    #[arg(long, value_name = "K", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub batch_sends: u16,
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
    /// No trace context: no span per call or request, no `traceparent` (ClientConfig::trace
    /// and ServerConfig::trace), to measure what tracing costs.
    #[arg(long)]
    pub no_trace: bool,
    /// The clients do not offer to read coalesced replies (ClientConfig::coalesced_replies),
    /// so servers answer each call in a message of its own: to measure what reply coalescing
    /// gives.
    #[arg(long)]
    pub no_coalesced_replies: bool,
    /// Measure what each guarantee costs: the baseline and fibrpc with all guarantees on
    /// (metrics included), each one off (confirm, mandatory, expiration, trace, metrics) and
    /// all off, in interleaved rounds; prints a markdown table (scripts/guarantee-costs.sh).
    #[arg(long)]
    pub guarantee_costs: bool,
    /// The codec of fibrpc's calls: bincode (the default) or JSON, to compare what each costs.
    #[arg(long, value_enum, default_value = "bincode")]
    pub codec: BenchCodec,
    /// How the request queues (fibrpc's and the baseline's) are declared.
    #[command(flatten)]
    pub request_queue: RequestQueueArgs,
    /// Servers run with `--server-process` export to the same collector.
    #[command(flatten)]
    pub otlp: fibrpc_app::OtlpArgs,
}

#[derive(Args)]
pub struct BareEchoArgs {
    /// The broker's adapter.
    #[arg(long, default_value = "amqp", value_parser = TransportChoice::parser(false))]
    pub transport: TransportChoice,
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

/// The codecs `--codec` chooses between.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BenchCodec {
    Bincode,
    Json,
}

impl BenchCodec {
    pub fn codec(self) -> fibrpc_rpc::Codec {
        match self {
            BenchCodec::Bincode => fibrpc_rpc::codec::BINCODE,
            BenchCodec::Json => fibrpc_rpc::codec::JSON,
        }
    }
}
