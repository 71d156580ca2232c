//! The fibrpc run: in-process servers and clients over the chosen transport.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use fibrpc_amqp::AmqpTransport;
use fibrpc_in_memory::InMemoryBroker;
use fibrpc_nats::NatsTransport;
use fibrpc_ports::{ReplyTransport, RequestTransport};
use fibrpc_rpc::{ClientConfig, Fib, RpcClient, RpcServer, ServerConfig};

use super::report::{join_workers, Latencies, Measured};
use crate::args::{BenchArgs, BenchTransport};
use crate::transport::{self, AdminTransport};

/// Connections for the run: one per server, one per client.
struct Transports {
    servers: Vec<Arc<dyn ReplyTransport>>,
    clients: Vec<Arc<dyn RequestTransport>>,
    /// Deletes the run's queue afterwards (brokers keep it otherwise).
    cleanup: Option<BoxFuture<'static, ()>>,
}

type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

impl Transports {
    /// Opens a connection per server and per client with `open`.
    async fn open_each<T, F, Fut>(args: &BenchArgs, open: F) -> Result<Self, String>
    where
        T: RequestTransport + ReplyTransport + 'static,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, fibrpc_ports::TransportError>>,
    {
        let mut transports = Self {
            servers: Vec::new(),
            clients: Vec::new(),
            cleanup: None,
        };
        for _ in 0..args.servers {
            transports
                .servers
                .push(Arc::new(open().await.map_err(|error| error.to_string())?));
        }
        for _ in 0..args.clients {
            transports
                .clients
                .push(Arc::new(open().await.map_err(|error| error.to_string())?));
        }
        Ok(transports)
    }
}

async fn connect(args: &BenchArgs, queue: &str) -> Result<Transports, String> {
    match args.transport {
        BenchTransport::Memory => {
            let broker = InMemoryBroker::new();
            broker.declare_queue(queue);
            Transports::open_each(args, || async { Ok(broker.connect()) }).await
        }
        BenchTransport::Amqp => {
            let config = transport::amqp_config(&args.urls, args.reply_to, None)?;
            connect_broker::<AmqpTransport>(args, queue, config).await
        }
        BenchTransport::Nats => {
            connect_broker::<NatsTransport>(args, queue, transport::nats_config(&args.urls)).await
        }
    }
}

/// Declares the run's queue, opens the connections, and arranges for the queue's removal.
async fn connect_broker<T: AdminTransport>(
    args: &BenchArgs,
    queue: &str,
    config: T::Config,
) -> Result<Transports, String> {
    let admin = T::open(config.clone())
        .await
        .map_err(|error| error.to_string())?;
    admin
        .declare(queue)
        .await
        .map_err(|error| error.to_string())?;
    let mut transports = Transports::open_each(args, || T::open(config.clone())).await?;
    let queue = queue.to_owned();
    transports.cleanup = Some(Box::pin(async move {
        let _ = admin.delete(&queue).await;
    }));
    Ok(transports)
}

pub async fn run(args: &BenchArgs) -> Result<Measured, String> {
    let queue = args
        .queue
        .clone()
        .unwrap_or_else(|| format!("fibrpc.bench.{}", uuid::Uuid::new_v4().simple()));
    let transports = connect(args, &queue).await?;
    let servers: Vec<_> = transports
        .servers
        .iter()
        .map(|transport| {
            let config = ServerConfig {
                queue: queue.clone(),
                prefetch: args.prefetch,
                concurrency: args.server_concurrency,
                ..ServerConfig::default()
            };
            RpcServer::new(transport.clone(), config, Fib::service(Default::default())).spawn()
        })
        .collect();
    let mut clients = Vec::new();
    for transport in &transports.clients {
        let config = ClientConfig {
            queue: queue.clone(),
            timeout: Duration::from_secs(30),
            max_in_flight: args.concurrency.max(1),
            ..ClientConfig::default()
        };
        clients.push(
            RpcClient::connect(transport.clone(), config)
                .await
                .map_err(|error| error.to_string())?,
        );
    }

    let expected = Arc::new(fibrpc_domain::fib(args.n));
    drive(args, &clients, &expected, args.warmup, None).await?;
    let progress = super::progress::bar(args.calls);
    let measured = drive(args, &clients, &expected, args.calls, progress.as_ref()).await?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    for server in servers {
        server.stop().await.map_err(|error| error.to_string())?;
    }
    // A queue named on the command line belongs to someone else: leave it.
    if let (Some(cleanup), None) = (transports.cleanup, &args.queue) {
        cleanup.await;
    }
    Ok(measured)
}

/// `calls` calls with `args.concurrency` in flight, spread over the clients; every answer is
/// checked against `expected`.
async fn drive(
    args: &BenchArgs,
    clients: &[RpcClient],
    expected: &Arc<fibrpc_domain::BigNumber>,
    calls: u64,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Measured, String> {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(OnceLock::new());
    let concurrency = args.concurrency.max(1);
    // Made before the clock starts: the run measures calls, not allocations.
    let shares: Vec<_> = (0..concurrency)
        .map(|_| Latencies::for_worker(calls, concurrency))
        .collect();
    let started = Instant::now();
    let workers: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(worker, mut latencies)| {
            let client = clients[worker % clients.len()].clone();
            let (next, errors, first_error, expected, n, progress) = (
                next.clone(),
                errors.clone(),
                first_error.clone(),
                expected.clone(),
                args.n,
                progress.cloned(),
            );
            tokio::spawn(async move {
                // Each worker takes the next call number until all are taken: the run is
                // bounded by `calls`, and each call by the client's timeout.
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let began = Instant::now();
                    let failure = match client.call::<Fib>(n).await {
                        Ok(value) if value == *expected => {
                            latencies.record(began.elapsed());
                            None
                        }
                        Ok(_) => Some(format!("wrong answer for fib({n})")),
                        Err(error) => Some(error.to_string()),
                    };
                    if let Some(failure) = failure {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let _ = first_error.set(failure);
                    }
                    if let Some(bar) = &progress {
                        bar.inc(1);
                    }
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    let (all, elapsed) = join_workers(workers, started).await?;
    let mut measured = Measured::new(&all, elapsed, errors.load(Ordering::Relaxed))?;
    measured.first_error = first_error.get().cloned();
    Ok(measured)
}
