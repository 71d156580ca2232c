//! Latency histograms, the printed lines and the JSON file.

use std::path::Path;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::args::BenchArgs;

/// One worker's round-trip latencies, in nanoseconds. Samples are kept raw while the run goes
/// (a push per call, memory made before the clock starts) and go into one HDR histogram
/// afterwards: a histogram per worker would be ~200 KiB each to fill and merge inside the
/// timed run, which at 256 in flight is most of a short memory run's time.
pub(crate) struct Latencies(Vec<u64>);

impl Latencies {
    /// Room for `expected` samples, so recording seldom reallocates mid-run.
    pub(crate) fn with_capacity(expected: u64) -> Self {
        Self(Vec::with_capacity(
            usize::try_from(expected).unwrap_or(usize::MAX),
        ))
    }

    /// Room for one worker's share of `calls` split over `workers`.
    pub(crate) fn for_worker(calls: u64, workers: usize) -> Self {
        Self::with_capacity(calls / (workers.max(1) as u64) + 1)
    }

    pub(crate) fn record(&mut self, took: Duration) {
        // A round trip past u64 nanoseconds (584 years) is clamped, not lost.
        self.0
            .push(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX));
    }

    /// Samples recorded.
    pub(crate) fn count(&self) -> u64 {
        self.0.len() as u64
    }

    fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// 1 ns to 60 s, 3 significant digits: a bare in-process round trip takes well under a
    /// microsecond, so whole microseconds would make its percentiles, and the p50 ratio, a
    /// matter of rounding.
    fn histogram(&self) -> Result<Histogram<u64>, String> {
        let mut histogram = Histogram::new_with_bounds(1, 60_000_000_000, 3)
            .map_err(|error| format!("cannot make a histogram: {error}"))?;
        for &nanos in &self.0 {
            // Saturating keeps an outlier past 60 s in the count, at the top bucket.
            histogram.saturating_record(nanos.max(1));
        }
        Ok(histogram)
    }
}

/// Waits for every worker, stops the clock when the last one is done, then merges their
/// latencies. A worker that panicked is an error of the run, not a silently smaller sample.
pub(crate) async fn join_workers(
    workers: Vec<JoinHandle<Result<Latencies, String>>>,
    started: Instant,
) -> Result<(Latencies, Duration), String> {
    let mut parts = Vec::with_capacity(workers.len());
    for worker in workers {
        parts.push(
            worker
                .await
                .map_err(|error| format!("a bench worker failed: {error}"))??,
        );
    }
    let elapsed = started.elapsed();
    let mut all = Latencies::with_capacity(parts.iter().map(Latencies::count).sum());
    for part in parts {
        all.extend(part);
    }
    Ok((all, elapsed))
}

/// One measured run: the fibrpc one or the bare baseline.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measured {
    /// Calls made, answered correctly or not.
    pub calls: u64,
    /// Calls that failed, timed out or got a wrong answer.
    pub errors: u64,
    pub seconds: f64,
    /// Correct answers per second.
    pub calls_per_sec: f64,
    /// Latencies in microseconds, to the nanosecond.
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// What the first failed call said, to tell a broken setup from a slow one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Measured {
    /// `latencies` holds the calls answered correctly; `errors` counts the others.
    pub(crate) fn new(
        latencies: &Latencies,
        elapsed: Duration,
        errors: u64,
    ) -> Result<Self, String> {
        let histogram = latencies.histogram()?;
        let answered = histogram.len();
        let seconds = elapsed.as_secs_f64();
        Ok(Self {
            calls: answered + errors,
            errors,
            seconds,
            calls_per_sec: if seconds > 0.0 {
                answered as f64 / seconds
            } else {
                0.0
            },
            p50_us: micros(histogram.value_at_quantile(0.50)),
            p90_us: micros(histogram.value_at_quantile(0.90)),
            p99_us: micros(histogram.value_at_quantile(0.99)),
            max_us: micros(histogram.max()),
            first_error: None,
        })
    }

    pub(crate) fn print(&self, label: &str) {
        println!(
            "{label:<10} {:>9.0} calls/s  p50 {}  p90 {}  p99 {}  max {}{}",
            self.calls_per_sec,
            shown(self.p50_us),
            shown(self.p90_us),
            shown(self.p99_us),
            shown(self.max_us),
            if self.errors > 0 {
                format!("  ({} errors)", self.errors)
            } else {
                String::new()
            }
        );
    }
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1e3
}

/// Microseconds as printed: tenths below 100 us, where they matter, whole ones above.
fn shown(micros: f64) -> String {
    if micros < 100.0 {
        format!("{micros:.1}us")
    } else {
        format!("{micros:.0}us")
    }
}

/// fibrpc's figures over the baseline's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub(crate) struct Ratios {
    /// Higher is better (1.0: as fast as the bare round trip).
    pub throughput: f64,
    /// Lower is better.
    pub p50: f64,
}

impl Ratios {
    pub(crate) fn of(fibrpc: &Measured, bare: &Measured) -> Self {
        Self {
            throughput: fibrpc.calls_per_sec / bare.calls_per_sec.max(f64::MIN_POSITIVE),
            // The histogram's floor is 1 ns, so the divisor is never 0.
            p50: fibrpc.p50_us / bare.p50_us.max(0.001),
        }
    }
}

/// The JSON file: the fibrpc run's figures at the top level, the baseline's nested.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub transport: &'static str,
    pub concurrency: usize,
    pub clients: usize,
    pub servers: usize,
    pub n: u64,
    pub warmup: u64,
    #[serde(flatten)]
    pub fibrpc: Measured,
    pub baseline: Option<Measured>,
    pub ratios: Option<Ratios>,
}

impl Report {
    pub(crate) fn new(
        transport: &'static str,
        args: &BenchArgs,
        fibrpc: Measured,
        baseline: Option<Measured>,
    ) -> Self {
        let ratios = baseline.as_ref().map(|bare| Ratios::of(&fibrpc, bare));
        Self {
            transport,
            concurrency: args.concurrency,
            clients: args.clients,
            servers: args.servers,
            n: args.n,
            warmup: args.warmup,
            fibrpc,
            baseline,
            ratios,
        }
    }

    pub(crate) fn write_json(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self)
            .map_err(|error| format!("cannot render the results as JSON: {error}"))?;
        std::fs::write(path, text + "\n")
            .map_err(|error| format!("cannot write {}: {error}", path.display()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(per_call: Duration, calls: u32, errors: u64) -> Measured {
        let mut latencies = Latencies::with_capacity(u64::from(calls));
        for _ in 0..calls {
            latencies.record(per_call);
        }
        Measured::new(&latencies, per_call * calls, errors).unwrap()
    }

    #[test]
    fn percentiles_and_rates_come_from_the_histogram() {
        let run = measured(Duration::from_micros(100), 1000, 2);
        assert_eq!(run.calls, 1002);
        assert_eq!(run.errors, 2);
        assert!((run.p50_us - 100.0).abs() < 0.1, "{run:?}");
        assert!((run.max_us - 100.0).abs() < 0.1, "{run:?}");
        assert!((run.calls_per_sec - 10_000.0).abs() < 1.0);
    }

    #[test]
    fn sub_microsecond_calls_keep_their_nanoseconds() {
        let run = measured(Duration::from_nanos(300), 10, 0);
        assert_eq!(run.calls, 10);
        assert!((run.p50_us - 0.3).abs() < 0.001, "{run:?}");
        assert_eq!(shown(run.p50_us), "0.3us");
        assert_eq!(shown(412.4), "412us");
    }

    #[test]
    fn ratios_put_fibrpc_over_the_baseline() {
        let fibrpc = measured(Duration::from_micros(200), 100, 0);
        let bare = measured(Duration::from_micros(100), 100, 0);
        let ratios = Ratios::of(&fibrpc, &bare);
        assert!((ratios.throughput - 0.5).abs() < 0.01, "{ratios:?}");
        assert!((ratios.p50 - 2.0).abs() < 0.01, "{ratios:?}");
    }

    #[test]
    fn the_json_has_the_documented_fields() {
        let report = Report {
            transport: "memory",
            concurrency: 64,
            clients: 1,
            servers: 1,
            n: 30,
            warmup: 0,
            fibrpc: measured(Duration::from_micros(200), 10, 1),
            baseline: None,
            ratios: None,
        };
        let value = serde_json::to_value(&report).unwrap();
        for field in [
            "transport",
            "calls",
            "concurrency",
            "clients",
            "n",
            "seconds",
            "calls_per_sec",
            "p50_us",
            "p90_us",
            "p99_us",
            "max_us",
            "errors",
        ] {
            assert!(value.get(field).is_some(), "{field} missing from {value}");
        }
        assert!(value["baseline"].is_null() && value["ratios"].is_null());
        assert_eq!(value["calls"], 11);

        let bare = measured(Duration::from_micros(100), 10, 0);
        let report = Report {
            ratios: Some(Ratios::of(&report.fibrpc, &bare)),
            baseline: Some(bare),
            ..report
        };
        let value = serde_json::to_value(&report).unwrap();
        assert!((value["baseline"]["p50_us"].as_f64().unwrap() - 100.0).abs() < 0.1);
        assert!(value["ratios"]["throughput"].is_number());
        assert!(value["ratios"]["p50"].is_number());
    }
}
