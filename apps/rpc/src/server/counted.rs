//! One call as the server counts it: its span and trace context, its metrics, its stats,
//! from when it is taken until it ends. A request is one call; a batch is as many calls as
//! it carries, each counted here as a request of its own.

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
    /// Starts counting the call `envelope` carries for `entry`'s procedure, taken from `queue`.
    pub(crate) fn start(
        entry: &Entry,
        queue: &str,
        messaging_system: impl FnOnce() -> &'static str,
        envelope: &Envelope,
        stats: Arc<ServerStats>,
    ) -> Self {
        let metrics = entry.metrics.clone();
        Self {
            trace: RequestTrace::start(entry.name, queue, messaging_system, envelope),
            started: metrics.as_ref().map(|_| Instant::now()),
            _in_flight: metrics.as_deref().and_then(ServerProcedureMetrics::enter),
            metrics,
            stats,
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
