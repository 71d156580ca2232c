//! One measured run's figures, how they print, and the ratios of fibrpc to the baseline.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cpu::CpuPerCall;
use crate::load::Outcome;

/// One measured run: the fibrpc one or the bare baseline.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Measured {
    /// Calls made, answered correctly or not.
    pub calls: u64,
    /// Calls that did not end with the right answer: failed, timed out or answered wrongly.
    pub errors: u64,
    /// `errors` by kind (`timeout`, `disconnected`, `no_such_queue`, `wrong_answer`, ...).
    pub failures: BTreeMap<&'static str, u64>,
    /// Attempts sent again under `--retry` (fibrpc only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    pub seconds: f64,
    /// Correct answers per second.
    pub calls_per_sec: f64,
    /// Latencies in microseconds, to the nanosecond.
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
    /// CPU time per call made, of each process, over the measured phase.
    pub cpu: CpuPerCall,
    /// What the first failed call said, to tell a broken setup from a slow one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
    /// The latencies themselves, for the plot.
    #[serde(skip)]
    pub histogram: Histogram<u64>,
}

impl Measured {
    pub(crate) fn new(
        outcome: Outcome,
        cpu: CpuPerCall,
        retries: Option<u64>,
    ) -> Result<Self, String> {
        let histogram = outcome.latencies.histogram()?;
        let answered = histogram.len();
        let errors = outcome.errors();
        let seconds = outcome.elapsed.as_secs_f64();
        Ok(Self {
            calls: answered + errors,
            errors,
            failures: outcome.failures,
            retries,
            seconds,
            calls_per_sec: if seconds > 0.0 {
                answered as f64 / seconds
            } else {
                0.0
            },
            p50_us: micros(histogram.value_at_quantile(0.50)),
            p90_us: micros(histogram.value_at_quantile(0.90)),
            p99_us: micros(histogram.value_at_quantile(0.99)),
            p999_us: micros(histogram.value_at_quantile(0.999)),
            max_us: micros(histogram.max()),
            cpu,
            first_error: outcome.first_error,
            histogram,
        })
    }

    pub(crate) fn print(&self, label: &str) {
        let mut troubles = String::new();
        if self.errors > 0 {
            troubles += &format!("  ({} errors: {:?})", self.errors, self.failures);
        }
        if let Some(retries) = self.retries.filter(|&retries| retries > 0) {
            troubles += &format!("  ({retries} retries)");
        }
        println!(
            "{label:<10} {:>9.0} calls/s  p50 {}  p90 {}  p99 {}  max {}{troubles}",
            self.calls_per_sec,
            shown(self.p50_us),
            shown(self.p90_us),
            shown(self.p99_us),
            shown(self.max_us),
        );
        println!("{:<10} {}", "", self.cpu.line());
    }
}

fn micros(nanos: u64) -> f64 {
    nanos as f64 / 1e3
}

/// Microseconds as printed: tenths below 100 us, where they matter, whole ones above.
pub(crate) fn shown(micros: f64) -> String {
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
    /// CPU time per call of client + servers + broker; lower is better. Absent when the two
    /// runs could not read the same processes.
    pub cpu: Option<f64>,
}

impl Ratios {
    pub(crate) fn of(fibrpc: &Measured, bare: &Measured) -> Self {
        Self {
            throughput: fibrpc.calls_per_sec / bare.calls_per_sec.max(f64::MIN_POSITIVE),
            // The histogram's floor is 1 ns, so the divisor is never 0.
            p50: fibrpc.p50_us / bare.p50_us.max(0.001),
            cpu: fibrpc.cpu.ratio_to(&bare.cpu),
        }
    }

    pub(crate) fn line(&self) -> String {
        let cpu = self
            .cpu
            .map_or_else(String::new, |cpu| format!("  cpu/call {cpu:.2}x"));
        format!(
            "throughput {:.2}x  p50 {:.2}x{cpu}  (fibrpc / baseline)",
            self.throughput, self.p50
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::time::Duration;

    use super::*;
    use crate::latency::Latencies;

    pub(crate) fn measured(per_call: Duration, calls: u32, errors: u64) -> Measured {
        let mut latencies = Latencies::with_capacity(u64::from(calls));
        for _ in 0..calls {
            latencies.record(per_call);
        }
        let mut failures = BTreeMap::new();
        if errors > 0 {
            failures.insert("timeout", errors);
        }
        let outcome = Outcome {
            latencies,
            elapsed: per_call * calls,
            failures,
            first_error: None,
        };
        let cpu = CpuPerCall {
            client_us: Some(per_call.as_secs_f64() * 1e6 / 10.0),
            server_us: None,
            broker_us: None,
            total_us: per_call.as_secs_f64() * 1e6 / 10.0,
            servers_in_client: true,
        };
        Measured::new(outcome, cpu, None).unwrap()
    }

    #[test]
    fn percentiles_and_rates_come_from_the_histogram() {
        let run = measured(Duration::from_micros(100), 1000, 2);
        assert_eq!(run.calls, 1002);
        assert_eq!(run.errors, 2);
        assert_eq!(run.failures.get("timeout"), Some(&2));
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
        assert!((ratios.cpu.unwrap() - 2.0).abs() < 0.01, "{ratios:?}");
    }

    #[test]
    fn a_run_serialises_its_figures_and_failures() {
        let value = serde_json::to_value(measured(Duration::from_micros(200), 10, 1)).unwrap();
        for field in [
            "calls",
            "errors",
            "failures",
            "seconds",
            "calls_per_sec",
            "p50_us",
            "p90_us",
            "p99_us",
            "p999_us",
            "max_us",
            "cpu",
        ] {
            assert!(value.get(field).is_some(), "{field} missing from {value}");
        }
        assert_eq!(value["calls"], 11);
        assert_eq!(value["failures"]["timeout"], 1);
        assert!(value["cpu"]["client_us"].is_number());
        assert!(value.get("histogram").is_none() && value.get("retries").is_none());
    }
}
