//! Latency histograms, the printed lines and the JSON file.

use std::path::Path;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::args::BenchArgs;

/// Round-trip latencies in microseconds (1 us to 60 s, 3 significant digits).
pub(crate) struct Latencies(Histogram<u64>);

impl Latencies {
    pub(crate) fn new() -> Result<Self, String> {
        Histogram::new_with_bounds(1, 60_000_000, 3)
            .map(Self)
            .map_err(|error| format!("cannot make a histogram: {error}"))
    }

    pub(crate) fn record(&mut self, took: Duration) {
        let micros = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        self.0.saturating_record(micros);
    }

    pub(crate) fn merge(&mut self, other: &Latencies) {
        let _ = self.0.add(&other.0);
    }
}

pub(crate) struct Measured {
    pub calls: u64,
    pub errors: u64,
    pub seconds: f64,
    pub calls_per_sec: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

impl Measured {
    pub(crate) fn new(latencies: Latencies, elapsed: Duration, errors: u64) -> Self {
        let histogram = latencies.0;
        let calls = histogram.len();
        let seconds = elapsed.as_secs_f64();
        Self {
            calls,
            errors,
            seconds,
            calls_per_sec: if seconds > 0.0 {
                calls as f64 / seconds
            } else {
                0.0
            },
            p50_us: histogram.value_at_quantile(0.50),
            p90_us: histogram.value_at_quantile(0.90),
            p99_us: histogram.value_at_quantile(0.99),
            max_us: histogram.max(),
        }
    }

    pub(crate) fn print(&self, label: &str) {
        println!(
            "{label:<10} {:>9.0} calls/s  p50 {}us  p90 {}us  p99 {}us  max {}us{}",
            self.calls_per_sec,
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.max_us,
            if self.errors > 0 {
                format!("  ({} errors)", self.errors)
            } else {
                String::new()
            }
        );
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "calls": self.calls, "errors": self.errors, "seconds": self.seconds,
            "calls_per_sec": self.calls_per_sec, "p50_us": self.p50_us, "p90_us": self.p90_us,
            "p99_us": self.p99_us, "max_us": self.max_us,
        })
    }
}

pub(crate) struct Ratios {
    pub throughput: f64,
    pub p50: f64,
}

pub(crate) struct Report {
    transport: &'static str,
    concurrency: usize,
    clients: usize,
    n: u64,
    pub fibrpc: Measured,
    baseline: Option<Measured>,
    pub ratios: Option<Ratios>,
}

impl Report {
    pub(crate) fn new(
        transport: &'static str,
        args: &BenchArgs,
        fibrpc: Measured,
        baseline: Option<Measured>,
    ) -> Self {
        let ratios = baseline.as_ref().map(|bare| Ratios {
            throughput: fibrpc.calls_per_sec / bare.calls_per_sec.max(f64::MIN_POSITIVE),
            p50: fibrpc.p50_us as f64 / (bare.p50_us.max(1)) as f64,
        });
        Self {
            transport,
            concurrency: args.concurrency,
            clients: args.clients,
            n: args.n,
            fibrpc,
            baseline,
            ratios,
        }
    }

    pub(crate) fn write_json(&self, path: &Path) -> Result<(), String> {
        let value = serde_json::json!({
            "transport": self.transport, "concurrency": self.concurrency, "clients": self.clients,
            "n": self.n, "fibrpc": self.fibrpc.json(),
            "baseline": self.baseline.as_ref().map(Measured::json),
            "ratios": self.ratios.as_ref().map(|r| serde_json::json!({"throughput": r.throughput, "p50": r.p50})),
        });
        let text = serde_json::to_string_pretty(&value).map_err(|error| error.to_string())?;
        std::fs::write(path, text)
            .map_err(|error| format!("cannot write {}: {error}", path.display()))
    }
}
