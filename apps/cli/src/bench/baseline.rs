//! The bare round trips fibrpc is measured against, per transport: the same calls with the
//! same number in flight, and nothing of fibrpc's protocol.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};

use super::report::{join_workers, Latencies, Measured};
use crate::args::{BenchArgs, BenchTransport};

pub async fn run(args: &BenchArgs) -> Result<Measured, String> {
    match args.transport {
        BenchTransport::Memory => memory(args).await,
        BenchTransport::Amqp => amqp(args).await,
        BenchTransport::Nats => {
            Err("no bare baseline for NATS yet; run without --baseline".to_owned())
        }
    }
}

/// lapin alone, publishing with `reply_to` and `correlation_id` to an echo consumer; the code
/// lives in the AMQP adapter, the only place that may speak to lapin.
async fn amqp(args: &BenchArgs) -> Result<Measured, String> {
    let body = args.n.to_string().into_bytes();
    let round_trips = |calls: u64| {
        let queue = format!("fibrpc.bench.bare.{}", uuid::Uuid::new_v4().simple());
        let body = body.clone();
        async move {
            fibrpc_amqp::baseline::bare_round_trips(
                &args.urls.amqp_url,
                &queue,
                calls,
                args.concurrency,
                body,
            )
            .await
            .map_err(|error| {
                format!(
                    "bare AMQP baseline: {}",
                    fibrpc_amqp::redact_url(&error.to_string())
                )
            })
        }
    };
    // Warmed up as the fibrpc run is, so that neither pays for a cold broker alone.
    if args.warmup > 0 {
        round_trips(args.warmup).await?;
    }
    let run = round_trips(args.calls).await?;
    let mut latencies = Latencies::with_capacity(run.latencies.len() as u64);
    for took in &run.latencies {
        latencies.record(*took);
    }
    let missing = args.calls.saturating_sub(latencies.count());
    Measured::new(&latencies, run.elapsed, missing)
}

/// A tokio channel to an echo task, and a oneshot back: the least a request/reply can cost
/// in one process. The echo computes nothing; fib(30) itself costs ~10 ns (`--domain`), far
/// below what is measured here.
async fn memory(args: &BenchArgs) -> Result<Measured, String> {
    let concurrency = args.concurrency.max(1);
    let (requests, mut incoming) =
        mpsc::channel::<(Vec<u8>, oneshot::Sender<Vec<u8>>)>(concurrency * 2);
    let echo = tokio::spawn(async move {
        while let Some((body, reply)) = incoming.recv().await {
            // The caller waits on the other end; if it is gone there is nobody to tell.
            let _ = reply.send(body);
        }
    });
    let round_trips = |calls: u64| {
        let next = Arc::new(AtomicU64::new(0));
        // Made before the clock starts, as in the fibrpc run.
        let shares: Vec<_> = (0..concurrency)
            .map(|_| Latencies::for_worker(calls, concurrency))
            .collect();
        let started = Instant::now();
        let workers: Vec<_> = shares
            .into_iter()
            .map(|mut latencies| {
                let (requests, next, n) = (requests.clone(), next.clone(), args.n);
                tokio::spawn(async move {
                    while next.fetch_add(1, Ordering::Relaxed) < calls {
                        let began = Instant::now();
                        // The body is made per call, as fibrpc encodes a request per call.
                        let (reply, replied) = oneshot::channel();
                        if requests
                            .send((n.to_string().into_bytes(), reply))
                            .await
                            .is_err()
                            || replied.await.is_err()
                        {
                            break;
                        }
                        latencies.record(began.elapsed());
                    }
                    Ok::<_, String>(latencies)
                })
            })
            .collect();
        join_workers(workers, started)
    };
    let outcome = async {
        round_trips(args.warmup).await?;
        round_trips(args.calls).await
    }
    .await;
    echo.abort();
    let (all, elapsed) = outcome?;
    // A worker stops early only if the echo task is gone; the calls it did not make count
    // as errors.
    let missing = args.calls.saturating_sub(all.count());
    Measured::new(&all, elapsed, missing)
}
