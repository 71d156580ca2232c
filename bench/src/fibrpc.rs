//! The fibrpc side: a request queue, servers (in-process, child processes or the user's) and
//! clients over the chosen transport.

use std::sync::Arc;

use fibrpc_fib::Fib;
use fibrpc_ports::{ReplyTransport, RequestTransport};
use fibrpc_rpc::metrics::Registry;
use fibrpc_rpc::{BatchLimits, ClientConfig, Metrics, RpcClient, RpcServer, ServerConfig};

use crate::caller::Caller;
use crate::discover;
use crate::process::ServerProcess;
use crate::settings::{Placement, Settings};
use crate::side::Side;

/// Sets up the fibrpc side, whose clients coalesce requests within `batch` if given; on
/// failure, what was set up is undone.
pub(crate) async fn open(
    settings: &Settings<'_>,
    brokers: Vec<u32>,
    batch: Option<BatchLimits>,
) -> Result<Side, String> {
    let name = if batch.is_some() {
        "fibrpc --batch"
    } else {
        "fibrpc"
    };
    let mut side = Side::new(name, brokers);
    match set_up(settings, &mut side, batch).await {
        Ok(()) => Ok(side),
        Err(error) => {
            let _ = side.close().await;
            Err(error)
        }
    }
}

fn fresh_queue() -> String {
    format!("fibrpc.bench.{}", uuid::Uuid::new_v4().simple())
}

async fn set_up(
    settings: &Settings<'_>,
    side: &mut Side,
    batch: Option<BatchLimits>,
) -> Result<(), String> {
    let args = settings.args;
    let queue = match &settings.placement {
        Placement::External { queue, .. } => queue.clone(),
        _ => {
            let queue = args.queue.clone().unwrap_or_else(fresh_queue);
            // A queue named on the command line belongs to someone else: leave it.
            let keep = args.queue.is_some();
            settings.declare_queue(&queue, side, keep).await?;
            queue
        }
    };
    match &settings.placement {
        Placement::InProcess => {
            for _ in 0..args.servers {
                let connection = settings.connect().await?;
                serve_in_process(settings, connection.replies, &queue, side);
            }
        }
        Placement::Processes => {
            for _ in 0..args.servers {
                let server =
                    ServerProcess::start(&serve_args(settings, &queue), &args.urls).await?;
                side.watch.servers.push(server.pid());
                side.on_close(server.stop());
            }
        }
        Placement::External { .. } => side.watch.servers = discover::serving(&queue),
    }
    for _ in 0..args.clients {
        let connection = settings.connect().await?;
        add_client(settings, connection.requests, &queue, side, batch).await?;
    }
    Ok(())
}

/// `fibrpc serve` with the bench's settings.
fn serve_args(settings: &Settings<'_>, queue: &str) -> Vec<String> {
    let transport = settings.args.transport.name;
    [
        "serve",
        "--transport",
        transport,
        "--queue",
        queue,
        "--prefetch",
        &settings.prefetch.to_string(),
        "--concurrency",
        &settings.server_concurrency.to_string(),
    ]
    .map(str::to_owned)
    .into_iter()
    .chain(settings.args.request_queue.to_args())
    .chain(settings.args.no_trace.then(|| "--no-trace".to_owned()))
    // Any free port: the bench measures the counting, nobody scrapes.
    .chain(
        settings
            .args
            .metrics
            .then(|| ["--metrics".to_owned(), "127.0.0.1:0".to_owned()])
            .into_iter()
            .flatten(),
    )
    .chain(
        settings
            .args
            .otlp
            .otlp
            .iter()
            .flat_map(|url| ["--otlp".to_owned(), url.clone()]),
    )
    .collect()
}

/// Metrics for a server or client of the bench, with `--metrics`: counted, never scraped.
fn metrics(settings: &Settings<'_>) -> Option<Metrics> {
    settings
        .args
        .metrics
        .then(|| Metrics::register(&mut Registry::default()))
}

fn serve_in_process(
    settings: &Settings<'_>,
    transport: Arc<dyn ReplyTransport>,
    queue: &str,
    side: &mut Side,
) {
    let config = ServerConfig {
        queue: queue.to_owned(),
        prefetch: settings.prefetch,
        concurrency: settings.server_concurrency,
        metrics: metrics(settings),
        trace: !settings.args.no_trace,
        ..ServerConfig::default()
    };
    let server = RpcServer::new(transport, config, Fib::service(Default::default())).spawn();
    side.watch.servers_in_client = true;
    side.on_close(async move { server.stop().await.map_err(|error| error.to_string()) });
}

async fn add_client(
    settings: &Settings<'_>,
    transport: Arc<dyn RequestTransport>,
    queue: &str,
    side: &mut Side,
    batch: Option<BatchLimits>,
) -> Result<(), String> {
    let args = settings.args;
    let config = ClientConfig {
        queue: queue.to_owned(),
        timeout: args.timeout,
        max_in_flight: settings.most_in_flight(),
        retry: fibrpc_app::retry_policy(args.retry),
        metrics: metrics(settings),
        codec: args.codec.codec(),
        batch,
        trace: !args.no_trace,
        coalesced_replies: !args.no_coalesced_replies,
        ..ClientConfig::default()
    };
    let client = RpcClient::connect(transport, config)
        .await
        .map_err(|error| error.to_string())?;
    side.callers.push(Caller::Fibrpc {
        client,
        n: args.n,
        expected: Arc::new(fibrpc_domain::fib(args.n)),
    });
    Ok(())
}
