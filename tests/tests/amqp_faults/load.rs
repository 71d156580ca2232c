//! A steady stream of calls while a fault is injected, and what became of them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc_domain::fib;
use fibrpc_fib::Fib;
use fibrpc_rpc::{CallError, RpcClient};
use fibrpc_tests::failures;
use tokio::time::Instant;

/// A bound on the calls of one scenario, whatever happens.
const MAX_CALLS: u64 = 200_000;

/// What one fault did to a steady stream of calls.
#[derive(Default)]
pub struct Row {
    pub fault: &'static str,
    pub action: &'static str,
    pub attempted: u64,
    pub succeeded: u64,
    pub failed: BTreeMap<String, u64>,
    /// Calls that got neither an answer nor a typed error before their deadline.
    pub lost: u64,
    pub retried: u64,
    /// Times the client opened a new reply queue meanwhile.
    pub reconnected: u64,
    /// The longest any call waited: how long the fault stalled callers.
    pub longest_call: Duration,
    /// The longest a call took to fail with a typed error (not a timeout).
    pub longest_failure: Duration,
}

/// Keeps 8 calls in flight from before `inject` runs until a second after it is over, so the
/// fault always meets calls in flight.
pub async fn under_load(
    fault: &'static str,
    action: &'static str,
    client: &RpcClient,
    inject: impl std::future::Future<Output = ()>,
) -> Row {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let before = client.stats();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, outcomes, started, stop, next) = (
            client.clone(),
            outcomes.clone(),
            started.clone(),
            stop.clone(),
            next.clone(),
        );
        workers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= MAX_CALLS {
                    break;
                }
                if i == 100 {
                    started.notify_one();
                }
                let n = 100 + i % 400;
                let began = Instant::now();
                let outcome = client.call::<Fib>(n).await;
                if let Ok(value) = &outcome {
                    assert_eq!(*value, fib(n), "wrong answer for fib({n})");
                }
                outcomes
                    .lock()
                    .unwrap()
                    .push((began.elapsed(), outcome.map(|_| ())));
            }
        });
    }
    started.notified().await;
    inject.await;
    tokio::time::sleep(Duration::from_secs(1)).await; // load after the fault, to see recovery
    stop.store(true, Ordering::Relaxed);
    while let Some(joined) = workers.join_next().await {
        joined.unwrap();
    }
    let mut row = Row {
        fault,
        action,
        retried: client.stats().retries - before.retries,
        reconnected: client.stats().reconnects - before.reconnects,
        ..Row::default()
    };
    for (took, outcome) in std::mem::take(&mut *outcomes.lock().unwrap()) {
        row.attempted += 1;
        row.longest_call = row.longest_call.max(took);
        match outcome {
            Ok(()) => row.succeeded += 1,
            Err(CallError::Timeout(_)) => row.lost += 1,
            Err(error) => {
                row.longest_failure = row.longest_failure.max(took);
                *row.failed.entry(failures::kind(&error)).or_default() += 1;
            }
        }
    }
    row
}
