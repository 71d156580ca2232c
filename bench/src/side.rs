//! One side of the comparison, fibrpc or the baseline: its clients, the processes its calls
//! cost CPU in, and what to stop and remove afterwards.

use std::future::Future;
use std::pin::Pin;

use crate::caller::Caller;
use crate::cpu::Watch;
use crate::load;
use crate::report::Measured;

type Closer = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

pub(crate) struct Side {
    pub name: &'static str,
    /// One per client.
    pub callers: Vec<Caller>,
    pub watch: Watch,
    /// Undone last first: clients close before servers stop, servers before queues go.
    closers: Vec<Closer>,
}

impl Side {
    pub(crate) fn new(name: &'static str, brokers: Vec<u32>) -> Self {
        Self {
            name,
            callers: Vec::new(),
            watch: Watch {
                brokers,
                ..Watch::default()
            },
            closers: Vec::new(),
        }
    }

    /// Runs `closer` when the side is closed.
    pub(crate) fn on_close(
        &mut self,
        closer: impl Future<Output = Result<(), String>> + Send + 'static,
    ) {
        self.closers.push(Box::pin(closer));
    }

    /// Warm-up calls, then `calls` measured with `concurrency` in flight, and the CPU the
    /// measured ones cost.
    pub(crate) async fn measure(
        &self,
        calls: u64,
        warmup: u64,
        concurrency: usize,
    ) -> Result<Measured, String> {
        if warmup > 0 {
            // Failures here show again in the measured run, if they last.
            load::drive(&self.callers, warmup, concurrency, None).await?;
        }
        let retries = || self.callers.iter().map(Caller::retries).sum::<u64>();
        let retried_before = retries();
        let progress = crate::progress::bar(calls);
        let before = self.watch.snapshot();
        let outcome = load::drive(&self.callers, calls, concurrency, progress.as_ref()).await;
        let after = self.watch.snapshot();
        if let Some(bar) = progress {
            bar.finish_and_clear();
        }
        let outcome = outcome?;
        let made = outcome.latencies.count() + outcome.errors();
        let cpu = self.watch.per_call(&before, &after, made);
        let retried = matches!(self.callers.first(), Some(Caller::Fibrpc { .. }))
            .then(|| retries() - retried_before);
        Measured::new(outcome, cpu, retried)
    }

    /// Closes the clients, then undoes the set-up in reverse; every step runs, the first
    /// failure is returned.
    pub(crate) async fn close(mut self) -> Result<(), String> {
        self.callers.clear();
        let mut outcome = Ok(());
        while let Some(closer) = self.closers.pop() {
            if let Err(error) = closer.await {
                if outcome.is_ok() {
                    outcome = Err(format!("{}: {error}", self.name));
                }
            }
        }
        outcome
    }
}
