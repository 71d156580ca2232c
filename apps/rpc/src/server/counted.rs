//! One call as the server counts it: its span and trace context, its metrics, its stats,
//! from when it is taken until it ends. A request is one call; a batch is as many calls as
//! it carries, each counted here as a request of its own.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use fibrpc_ports::Envelope;

use super::pipeline::{Entry, ServerProcedureMetrics};
use super::ServerStats;
use crate::metrics::{InFlight, ServerOutcome};
use crate::trace::RequestTrace;

pub(crate) struct Counted {
    pub trace: RequestTrace,
    metrics: Option<Arc<ServerProcedureMetrics>>,
    started: Option<Instant>,
    _in_flight: Option<InFlight>,
    stats: Arc<ServerStats>,
}

impl Counted {
    /// Starts counting the call `envelope` carries for `entry`'s procedure, taken from `queue`;
    /// in a span and trace of its own when `traced` ([`ServerConfig::trace`](super::ServerConfig)).
    pub(crate) fn start(
        entry: &Entry,
        queue: &str,
        messaging_system: impl FnOnce() -> &'static str,
        envelope: &Envelope,
        stats: Arc<ServerStats>,
        traced: bool,
    ) -> Self {
        let metrics = entry.metrics.clone();
        let trace = match traced {
            true => RequestTrace::start(entry.name, queue, messaging_system, envelope),
            false => RequestTrace::off(),
        };
        Self {
            trace,
            started: metrics.as_ref().map(|_| Instant::now()),
            _in_flight: metrics.as_deref().and_then(ServerProcedureMetrics::enter),
            metrics,
            stats,
        }
    }

    /// Runs `future` in the call's trace context, if it is traced.
    pub(crate) async fn scope<T>(&self, future: impl Future<Output = T>) -> T {
        match self.trace.context {
            Some(context) => context.scope(future).await,
            None => future.await,
        }
    }

    /// The call ended with `outcome`: counted, and its span closed.
    pub(crate) fn finish(self, outcome: ServerOutcome) {
        self.stats.record(outcome);
        self.trace.finish(outcome);
        if let (Some(metrics), Some(started)) = (&self.metrics, self.started) {
            metrics.record_request(outcome, started.elapsed());
        }
    }
}
