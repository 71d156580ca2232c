//! The bare round trips fibrpc is measured against, per transport.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::report::{Latencies, Measured};
use crate::args::{BenchArgs, BenchTransport};

pub async fn run(args: &BenchArgs) -> Result<Measured, String> {
    match args.transport {
        BenchTransport::Memory => memory(args).await,
        BenchTransport::Amqp => {
            let queue = format!("fibrpc.bench.bare.{}", uuid::Uuid::new_v4().simple());
            let body = args.n.to_string().into_bytes();
            let run = fibrpc_amqp::baseline::bare_round_trips(
                &args.urls.amqp_url,
                &queue,
                args.calls,
                args.concurrency,
                body,
            )
            .await
            .map_err(|error| {
                format!(
                    "bare AMQP baseline: {}",
                    fibrpc_amqp::redact_url(&error.to_string())
                )
            })?;
            let mut latencies = Latencies::new()?;
            for took in &run.latencies {
                latencies.record(*took);
            }
            let missing = args.calls.saturating_sub(run.latencies.len() as u64);
            Ok(Measured::new(latencies, run.elapsed, missing))
        }
        BenchTransport::Nats => {
            Err("no bare baseline for NATS yet; run without --baseline".to_owned())
        }
    }
}

/// A tokio channel to an echo task, and a oneshot back: the least a request/reply can cost
/// in one process.
async fn memory(args: &BenchArgs) -> Result<Measured, String> {
    let (requests, mut incoming) =
        mpsc::channel::<(Vec<u8>, oneshot::Sender<Vec<u8>>)>(args.concurrency.max(1) * 2);
    let echo = tokio::spawn(async move {
        while let Some((body, reply)) = incoming.recv().await {
            let _ = reply.send(body);
        }
    });
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency.max(1))
        .map(|_| {
            let (requests, next, calls, n) = (requests.clone(), next.clone(), args.calls, args.n);
            let latencies = Latencies::new();
            tokio::spawn(async move {
                let mut latencies = latencies?;
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let began = Instant::now();
                    let (reply, replied) = oneshot::channel();
                    if requests
                        .send((n.to_string().into_bytes(), reply))
                        .await
                        .is_err()
                    {
                        break;
                    }
                    if replied.await.is_err() {
                        break;
                    }
                    latencies.record(began.elapsed());
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
    let elapsed = started.elapsed();
    echo.abort();
    Ok(Measured::new(all, elapsed, 0))
}
