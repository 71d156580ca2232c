//! Prometheus metrics of servers and clients, counted by the protocol in one place for every
//! adapter. The program owns the [`Registry`] and serves it however it likes (the `fibrpc`
//! command line over HTTP); this crate knows no HTTP.
//!
//! ```
//! use fibrpc_rpc::metrics::{self, Metrics, Registry};
//!
//! let mut registry = Registry::default();
//! let metrics = Metrics::register(&mut registry);
//! // ServerConfig { metrics: Some(metrics.clone()), .. } and the same in ClientConfig
//! let text = metrics::render(&registry);
//! assert!(text.contains("fibrpc_server_in_flight 0"));
//! # drop(metrics);
//! ```
//!
//! Counting a request or a call costs a few relaxed atomic adds and no allocation or lock:
//! the counters of each procedure and outcome are looked up once, when a server starts (for
//! its procedures) or at a client's first call of a procedure, and held.

mod histogram;
mod outcome;
mod procedures;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// The crate the metrics are made with, for programs that add their own.
pub use prometheus_client;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
pub use prometheus_client::registry::Registry;

pub use self::histogram::{Histogram, BUCKETS};
pub use self::outcome::{CallOutcome, ServerOutcome};
use self::procedures::Procedures;

/// The content type of [`render`]'s text, for an HTTP response.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The label of requests for a procedure the server does not host: their names are the
/// caller's to choose, so they are not labels of their own.
pub const UNKNOWN_PROCEDURE: &str = "unknown";

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    procedure: &'static str,
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcedureLabel {
    procedure: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RoleLabel {
    role: &'static str,
}

/// fibrpc's metrics, registered in a [`Registry`]. Cheap to clone; give a clone to each
/// server and client ([`ServerConfig::metrics`](crate::ServerConfig::metrics),
/// [`ClientConfig::metrics`](crate::ClientConfig::metrics)), and they add up.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Families>,
}

struct Families {
    server_requests: Family<OutcomeLabels, Counter>,
    server_durations: Family<ProcedureLabel, Histogram>,
    server_in_flight: Gauge,
    reconnects: Family<RoleLabel, Counter>,
    client_calls: Family<OutcomeLabels, Counter>,
    client_durations: Family<ProcedureLabel, Histogram>,
    client_replies_dropped: Counter,
    client_retries: Counter,
    broker_blocked: Counter,
    client_procedures: Procedures<ProcedureMetrics<{ CallOutcome::ALL.len() }>>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Registers fibrpc's metrics in `registry` (once per registry: the names would clash).
    pub fn register(registry: &mut Registry) -> Self {
        let families = Families {
            server_requests: Family::default(),
            server_durations: Family::default(),
            server_in_flight: Gauge::default(),
            reconnects: Family::default(),
            client_calls: Family::default(),
            client_durations: Family::default(),
            client_replies_dropped: Counter::default(),
            client_retries: Counter::default(),
            broker_blocked: Counter::default(),
            client_procedures: Procedures::default(),
        };
        registry.register(
            "fibrpc_server_requests",
            "Requests a server finished with, by procedure and outcome",
            families.server_requests.clone(),
        );
        registry.register(
            "fibrpc_server_request_duration_seconds",
            "Time from taking a request to settling it, by procedure",
            families.server_durations.clone(),
        );
        registry.register(
            "fibrpc_server_in_flight",
            "Requests being handled now",
            families.server_in_flight.clone(),
        );
        registry.register(
            "fibrpc_transport_reconnects",
            "Times a lost connection was reopened: the server's request stream, the client's reply address",
            families.reconnects.clone(),
        );
        registry.register(
            "fibrpc_client_calls",
            "Calls a client finished, by procedure and outcome",
            families.client_calls.clone(),
        );
        registry.register(
            "fibrpc_client_call_duration_seconds",
            "Time a call took, retries included, by procedure",
            families.client_durations.clone(),
        );
        registry.register(
            "fibrpc_client_replies_dropped",
            "Replies no call waited for (late, unknown or without correlation id)",
            families.client_replies_dropped.clone(),
        );
        registry.register(
            "fibrpc_client_retries",
            "Attempts sent again under the retry policy",
            families.client_retries.clone(),
        );
        registry.register(
            "fibrpc_broker_blocked",
            "Times the broker blocked publishing on a server's connection (flow control: a memory or disk alarm)",
            families.broker_blocked.clone(),
        );
        Self {
            inner: Arc::new(families),
        }
    }

    /// The counters of a server's procedure, looked up once.
    pub(crate) fn server_procedure(
        &self,
        procedure: &'static str,
    ) -> ProcedureMetrics<{ ServerOutcome::ALL.len() }> {
        let families = &self.inner;
        ProcedureMetrics {
            in_flight: Some(families.server_in_flight.clone()),
            ..ProcedureMetrics::resolve(
                procedure,
                ServerOutcome::ALL.map(ServerOutcome::label),
                &families.server_requests,
                &families.server_durations,
            )
        }
    }

    /// The counters of a procedure a client calls; looked up without a lock but for the
    /// first call of each procedure.
    pub(crate) fn client_procedure(
        &self,
        procedure: &'static str,
    ) -> &ProcedureMetrics<{ CallOutcome::ALL.len() }> {
        let families = &self.inner;
        families
            .client_procedures
            .get_or_insert(procedure, |procedure| {
                ProcedureMetrics::resolve(
                    procedure,
                    CallOutcome::ALL.map(CallOutcome::label),
                    &families.client_calls,
                    &families.client_durations,
                )
            })
    }

    /// The reconnection counter of a server's or a client's (`role`), shown as 0 from the
    /// start, so that a rate over it is defined before the first reconnection.
    pub(crate) fn reconnects(&self, role: &'static str) -> Counter {
        self.inner
            .reconnects
            .get_or_create(&RoleLabel { role })
            .clone()
    }

    pub(crate) fn reply_dropped(&self) {
        self.inner.client_replies_dropped.inc();
    }

    /// The counter of flow-control blocks a server saw.
    pub(crate) fn broker_blocked(&self) -> Counter {
        self.inner.broker_blocked.clone()
    }

    pub(crate) fn retried(&self) {
        self.inner.client_retries.inc();
    }
}

/// One procedure's counters, a counter per outcome, and its histogram; a server's also the
/// gauge of its requests in flight (held here so that counting one costs no clone).
pub(crate) struct ProcedureMetrics<const N: usize> {
    outcomes: [Counter; N],
    durations: Histogram,
    in_flight: Option<Gauge>,
}

impl<const N: usize> ProcedureMetrics<N> {
    fn resolve(
        procedure: &'static str,
        outcomes: [&'static str; N],
        counters: &Family<OutcomeLabels, Counter>,
        durations: &Family<ProcedureLabel, Histogram>,
    ) -> Self {
        Self {
            outcomes: outcomes.map(|outcome| {
                let labels = OutcomeLabels { procedure, outcome };
                counters.get_or_create(&labels).clone()
            }),
            durations: durations
                .get_or_create(&ProcedureLabel { procedure })
                .clone(),
            in_flight: None,
        }
    }

    /// Counts one request or call that ended with `outcome` (its index in `ALL`).
    fn record(&self, outcome: usize, took: Duration) {
        self.outcomes[outcome].inc();
        self.durations.observe(took);
    }
}

impl ProcedureMetrics<{ ServerOutcome::ALL.len() }> {
    pub(crate) fn record_request(&self, outcome: ServerOutcome, took: Duration) {
        self.record(outcome as usize, took);
    }

    /// Counts a request in flight until the guard is dropped.
    pub(crate) fn enter(&self) -> Option<InFlight> {
        self.in_flight.as_ref().map(|gauge| {
            gauge.inc();
            InFlight(gauge.clone())
        })
    }
}

/// A request counted in the in-flight gauge; dropped when its handling ends in any way.
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl ProcedureMetrics<{ CallOutcome::ALL.len() }> {
    pub(crate) fn record_call(&self, outcome: CallOutcome, took: Duration) {
        self.record(outcome as usize, took);
    }
}

/// The registry's metrics in Prometheus' text format (version 0.0.4).
pub fn render(registry: &Registry) -> String {
    let mut text = String::new();
    // Writing to a String cannot fail; an encoder error would be a bug in the crate.
    if let Err(error) = prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
        tracing::error!(%error, "cannot encode the metrics");
    }
    text
}

#[cfg(test)]
mod tests;
