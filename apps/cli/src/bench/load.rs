//! The fibrpc run: in-process servers and clients over the chosen transport.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fibrpc_amqp::{AmqpConfig, AmqpTransport, ReplyQueueMode};
use fibrpc_in_memory::InMemoryBroker;
use fibrpc_nats::{NatsConfig, NatsTransport};
use fibrpc_ports::{ReplyTransport, RequestTransport};
use fibrpc_rpc::{ClientConfig, RpcClient, RpcServer, ServerConfig};
use tokio::sync::oneshot;

use super::report::{Latencies, Measured};
use crate::args::{BenchArgs, BenchTransport, ReplyToMode};

/// Connections for the run: one per server, one per client.
struct Transports {
    servers: Vec<Arc<dyn ReplyTransport>>,
    clients: Vec<Arc<dyn RequestTransport>>,
    /// Deletes the run's queue afterwards.
    admin: Option<AmqpTransport>,
    nats_admin: Option<NatsTransport>,
}

async fn connect(args: &BenchArgs, queue: &str) -> Result<Transports, String> {
    match args.transport {
        BenchTransport::Memory => {
            let broker = InMemoryBroker::new();
            broker.declare_queue(queue);
            Ok(Transports {
                servers: (0..args.servers)
                    .map(|_| Arc::new(broker.connect()) as Arc<dyn ReplyTransport>)
                    .collect(),
                clients: (0..args.clients)
                    .map(|_| Arc::new(broker.connect()) as Arc<dyn RequestTransport>)
                    .collect(),
                admin: None,
                nats_admin: None,
            })
        }
        BenchTransport::Amqp => {
            let config = AmqpConfig {
                url: args.amqp_url.clone(),
                reply_queue: match args.reply_to {
                    ReplyToMode::Exclusive => ReplyQueueMode::Exclusive,
                    ReplyToMode::Direct => ReplyQueueMode::Direct,
                },
                ..AmqpConfig::default()
            };
            let open = || async {
                AmqpTransport::connect(config.clone())
                    .await
                    .map_err(|error| error.to_string())
            };
            let admin = open().await?;
            admin
                .declare_request_queue(queue)
                .await
                .map_err(|error| error.to_string())?;
            let mut transports = Transports {
                servers: Vec::new(),
                clients: Vec::new(),
                admin: Some(admin),
                nats_admin: None,
            };
            for _ in 0..args.servers {
                transports.servers.push(Arc::new(open().await?));
            }
            for _ in 0..args.clients {
                transports.clients.push(Arc::new(open().await?));
            }
            Ok(transports)
        }
        BenchTransport::Nats => {
            let config = NatsConfig {
                url: args.nats_url.clone(),
                ..NatsConfig::default()
            };
            let open = || async {
                NatsTransport::connect(config.clone())
                    .await
                    .map_err(|error| error.to_string())
            };
            let admin = open().await?;
            admin
                .declare_request_queue(queue)
                .await
                .map_err(|error| error.to_string())?;
            let mut transports = Transports {
                servers: Vec::new(),
                clients: Vec::new(),
                admin: None,
                nats_admin: None,
            };
            for _ in 0..args.servers {
                transports.servers.push(Arc::new(open().await?));
            }
            for _ in 0..args.clients {
                transports.clients.push(Arc::new(open().await?));
            }
            transports.nats_admin = Some(admin);
            Ok(transports)
        }
    }
}

pub async fn run(args: &BenchArgs) -> Result<Measured, String> {
    let queue = args
        .queue
        .clone()
        .unwrap_or_else(|| format!("fibrpc.bench.{}", uuid::Uuid::new_v4().simple()));
    let transports = connect(args, &queue).await?;
    let mut stops = Vec::new();
    let mut servers = Vec::new();
    for transport in &transports.servers {
        let config = ServerConfig {
            queue: queue.clone(),
            prefetch: args.prefetch,
            concurrency: args.server_concurrency,
            ..ServerConfig::default()
        };
        let server = RpcServer::new(transport.clone(), config);
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        servers.push(tokio::spawn(async move {
            server
                .run(async {
                    let _ = stopped.await;
                })
                .await
        }));
    }
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
    if clients.is_empty() {
        return Err("--clients must be at least 1".to_owned());
    }

    let expected = Arc::new(fibrpc_domain::fib(args.n));
    drive(args, &clients, &expected, args.warmup, None).await?;
    let progress = super::progress(args.calls);
    let measured = drive(args, &clients, &expected, args.calls, progress.as_ref()).await?;
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }

    for stop in stops {
        let _ = stop.send(());
    }
    for server in servers {
        let _ = server.await;
    }
    if args.queue.is_none() {
        if let Some(admin) = &transports.admin {
            let _ = admin.delete_queue(&queue).await;
        }
        if let Some(admin) = &transports.nats_admin {
            let _ = admin.delete_queue(&queue).await;
        }
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
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|worker| {
            let client = clients[worker % clients.len()].clone();
            let (next, errors, expected, n, progress) = (
                next.clone(),
                errors.clone(),
                expected.clone(),
                args.n,
                progress.cloned(),
            );
            let latencies = Latencies::new();
            tokio::spawn(async move {
                let mut latencies = latencies?;
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let began = Instant::now();
                    match client.call(n).await {
                        Ok(value) if value == *expected => latencies.record(began.elapsed()),
                        _ => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if let Some(bar) = &progress {
                        bar.inc(1);
                    }
                }
                Ok::<_, String>(latencies)
            })
        })
        .collect();
    let mut all = Latencies::new()?;
    for worker in workers {
        if let Ok(latencies) = worker.await {
            all.merge(&latencies?);
        }
    }
    Ok(Measured::new(
        all,
        started.elapsed(),
        errors.load(Ordering::Relaxed),
    ))
}
