//! The load: a fixed number of calls with a fixed number in flight, the same code for fibrpc
//! and for the baselines, so both are measured by the same clock in the same way.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::caller::Caller;
use crate::latency::Latencies;

/// What one run of calls gave.
pub(crate) struct Outcome {
    /// Latencies of the calls answered correctly.
    pub latencies: Latencies,
    pub elapsed: Duration,
    /// Calls that did not end with the right answer, by kind.
    pub failures: BTreeMap<&'static str, u64>,
    /// What the first failed call said, to tell a broken setup from a slow one.
    pub first_error: Option<String>,
}

impl Outcome {
    pub(crate) fn errors(&self) -> u64 {
        self.failures.values().sum()
    }
}

/// One worker's share of a run.
struct Share {
    latencies: Latencies,
    failures: BTreeMap<&'static str, u64>,
    first_error: Option<String>,
}

/// Makes `calls` calls with `concurrency` in flight, spread over `callers` (one per client);
/// every answer is checked. The clock runs from the first call to the last answer.
pub(crate) async fn drive(
    callers: &[Caller],
    calls: u64,
    concurrency: usize,
    progress: Option<&indicatif::ProgressBar>,
) -> Result<Outcome, String> {
    let concurrency = concurrency.max(1);
    if callers.is_empty() {
        return Err("no client to call with".to_owned());
    }
    let next = Arc::new(AtomicU64::new(0));
    // Made before the clock starts: the run measures calls, not allocations.
    let shares: Vec<_> = (0..concurrency)
        .map(|_| Share {
            latencies: Latencies::for_worker(calls, concurrency),
            failures: BTreeMap::new(),
            first_error: None,
        })
        .collect();
    let started = Instant::now();
    let workers: Vec<_> = shares
        .into_iter()
        .enumerate()
        .map(|(worker, mut share)| {
            let caller = callers[worker % callers.len()].clone();
            let (next, progress) = (next.clone(), progress.cloned());
            tokio::spawn(async move {
                // Each worker takes the next call number until all are taken: the run is
                // bounded by `calls`, and each call by its client's timeout.
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let began = Instant::now();
                    match caller.call().await {
                        Ok(()) => share.latencies.record(began.elapsed()),
                        Err(failure) => {
                            *share.failures.entry(failure.kind).or_default() += 1;
                            share.first_error.get_or_insert(failure.message);
                        }
                    }
                    if let Some(bar) = &progress {
                        bar.inc(1);
                    }
                }
                share
            })
        })
        .collect();
    let mut parts = Vec::with_capacity(workers.len());
    for worker in workers {
        // A worker that panicked is an error of the run, not a silently smaller sample.
        parts.push(
            worker
                .await
                .map_err(|error| format!("a bench worker failed: {error}"))?,
        );
    }
    let elapsed = started.elapsed();
    let mut outcome = Outcome {
        latencies: Latencies::with_capacity(calls),
        elapsed,
        failures: BTreeMap::new(),
        first_error: None,
    };
    for part in parts {
        outcome.latencies.extend(part.latencies);
        for (kind, count) in part.failures {
            *outcome.failures.entry(kind).or_default() += count;
        }
        if outcome.first_error.is_none() {
            outcome.first_error = part.first_error;
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use tokio::sync::mpsc;

    use super::*;
    use crate::caller::MemoryRequest;

    /// An echo task that drops every `nth` request unanswered.
    fn echo(nth: u64) -> Caller {
        let (requests, mut incoming) = mpsc::channel::<MemoryRequest>(16);
        tokio::spawn(async move {
            let mut seen = 0;
            while let Some((body, reply)) = incoming.recv().await {
                seen += 1;
                if seen % nth != 0 {
                    let _ = reply.send(body);
                }
            }
        });
        Caller::Memory { requests, n: 30 }
    }

    #[tokio::test]
    async fn every_call_is_made_once_and_failures_are_counted_by_kind() {
        let outcome = drive(&[echo(10)], 1000, 8, None).await.unwrap();
        assert_eq!(outcome.latencies.count() + outcome.errors(), 1000);
        assert_eq!(outcome.failures.get("disconnected"), Some(&100));
        assert!(outcome.first_error.is_some());
        let clean = drive(&[echo(u64::MAX), echo(u64::MAX)], 500, 3, None)
            .await
            .unwrap();
        assert_eq!(clean.latencies.count(), 500);
        assert!(clean.failures.is_empty() && clean.first_error.is_none());
    }
}
