//! Every run of an invocation, the median of each level's rounds, and the JSON file.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::report::{Measured, Ratios};

/// One round at one level: the baseline (if any), fibrpc, and fibrpc with coalesced
/// requests (with `--batch`), measured back to back.
#[derive(Debug, Serialize)]
pub(crate) struct Run {
    pub concurrency: usize,
    pub round: u32,
    pub fibrpc: Measured,
    pub baseline: Option<Measured>,
    pub ratios: Option<Ratios>,
    pub batched: Option<Measured>,
    /// fibrpc with coalesced requests against the baseline.
    pub batched_ratios: Option<Ratios>,
}

/// A level's rounds summed up by their medians.
#[derive(Debug, Serialize)]
pub(crate) struct Level {
    pub concurrency: usize,
    pub rounds: usize,
    pub fibrpc_calls_per_sec: f64,
    pub baseline_calls_per_sec: Option<f64>,
    pub fibrpc_p50_us: f64,
    pub baseline_p50_us: Option<f64>,
    pub fibrpc_cpu_us: f64,
    pub baseline_cpu_us: Option<f64>,
    /// The median of the rounds' ratios.
    pub ratios: Option<Ratios>,
    /// The lowest and highest throughput ratio of the rounds.
    pub throughput_ratio_range: Option<(f64, f64)>,
    /// The same for fibrpc with coalesced requests (`--batch`).
    pub batched_calls_per_sec: Option<f64>,
    pub batched_p50_us: Option<f64>,
    pub batched_cpu_us: Option<f64>,
    pub batched_ratios: Option<Ratios>,
    pub batched_throughput_ratio_range: Option<(f64, f64)>,
}

impl Level {
    /// `runs` are the rounds of one level.
    pub(crate) fn of(runs: &[&Run]) -> Option<Self> {
        let first = runs.first()?;
        let fibrpc = |figure: fn(&Measured) -> f64| {
            median(runs.iter().map(|run| figure(&run.fibrpc)).collect())
        };
        let baseline = |figure: fn(&Measured) -> f64| {
            median(
                runs.iter()
                    .filter_map(|run| run.baseline.as_ref().map(figure))
                    .collect(),
            )
        };
        let batched = |figure: fn(&Measured) -> f64| {
            median(
                runs.iter()
                    .filter_map(|run| run.batched.as_ref().map(figure))
                    .collect(),
            )
        };
        let ratios: Vec<Ratios> = runs.iter().filter_map(|run| run.ratios).collect();
        let batched_ratios: Vec<Ratios> =
            runs.iter().filter_map(|run| run.batched_ratios).collect();
        Some(Self {
            concurrency: first.concurrency,
            rounds: runs.len(),
            fibrpc_calls_per_sec: fibrpc(|run| run.calls_per_sec)?,
            baseline_calls_per_sec: baseline(|run| run.calls_per_sec),
            fibrpc_p50_us: fibrpc(|run| run.p50_us)?,
            baseline_p50_us: baseline(|run| run.p50_us),
            fibrpc_cpu_us: fibrpc(|run| run.cpu.total_us)?,
            baseline_cpu_us: baseline(|run| run.cpu.total_us),
            ratios: median_ratios(&ratios),
            throughput_ratio_range: range(&ratios),
            batched_calls_per_sec: batched(|run| run.calls_per_sec),
            batched_p50_us: batched(|run| run.p50_us),
            batched_cpu_us: batched(|run| run.cpu.total_us),
            batched_ratios: median_ratios(&batched_ratios),
            batched_throughput_ratio_range: range(&batched_ratios),
        })
    }

    /// One line of the closing table.
    pub(crate) fn line(&self) -> String {
        self.line_of(
            self.fibrpc_calls_per_sec,
            self.ratios,
            self.throughput_ratio_range,
        )
    }

    /// The line of fibrpc with coalesced requests, if measured.
    pub(crate) fn batched_line(&self) -> Option<String> {
        Some(self.line_of(
            self.batched_calls_per_sec?,
            self.batched_ratios,
            self.batched_throughput_ratio_range,
        ))
    }

    fn line_of(
        &self,
        calls_per_sec: f64,
        ratios: Option<Ratios>,
        range: Option<(f64, f64)>,
    ) -> String {
        let number = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.0}"));
        let ratio = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.2}x"));
        let range = range.map_or("-".to_owned(), |(low, high)| format!("{low:.2}-{high:.2}"));
        format!(
            "{:>9} {:>10} {:>10} {:>9} {:>11} {:>9} {:>9}",
            self.concurrency,
            number(self.baseline_calls_per_sec),
            number(Some(calls_per_sec)),
            ratio(ratios.map(|ratios| ratios.throughput)),
            range,
            ratio(ratios.map(|ratios| ratios.p50)),
            ratio(ratios.and_then(|ratios| ratios.cpu)),
        )
    }

    pub(crate) const HEADER: &'static str =
        "in flight   baseline     fibrpc     ratio       range p50 ratio cpu ratio   (calls/s; medians of the rounds)";
}

/// The median of each ratio of the rounds.
fn median_ratios(ratios: &[Ratios]) -> Option<Ratios> {
    let throughput = median(ratios.iter().map(|ratios| ratios.throughput).collect())?;
    Some(Ratios {
        throughput,
        p50: median(ratios.iter().map(|ratios| ratios.p50).collect()).unwrap_or(0.0),
        // Only when every round has one: a median of some rounds would mislead.
        cpu: ratios
            .iter()
            .map(|ratios| ratios.cpu)
            .collect::<Option<Vec<f64>>>()
            .and_then(median),
    })
}

/// The lowest and highest throughput ratio of the rounds.
fn range(ratios: &[Ratios]) -> Option<(f64, f64)> {
    ratios
        .iter()
        .map(|ratios| ratios.throughput)
        .fold(None, |range, ratio| {
            Some(range.map_or((ratio, ratio), |(low, high): (f64, f64)| {
                (low.min(ratio), high.max(ratio))
            }))
        })
}

/// The median; the mean of the middle two for an even count. `None` for no values.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    Some(if values.len().is_multiple_of(2) {
        (values[middle - 1] + values[middle]) / 2.0
    } else {
        values[middle]
    })
}

/// The JSON file. `calls`, `errors`, `failures` and `retries` add up every fibrpc run (what a
/// test of failures checks); `runs` holds each run's figures, `levels` their medians.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub transport: &'static str,
    /// `in-process`, `process` or `external`.
    pub servers_run: &'static str,
    pub servers: usize,
    pub clients: usize,
    pub n: u64,
    pub warmup: u64,
    pub calls_per_run: u64,
    pub rounds: u32,
    pub concurrency: Vec<usize>,
    pub prefetch: u16,
    pub server_concurrency: usize,
    pub retry: bool,
    pub calls: u64,
    pub errors: u64,
    pub failures: BTreeMap<&'static str, u64>,
    pub retries: u64,
    pub runs: Vec<Run>,
    pub levels: Vec<Level>,
}

impl Report {
    /// Sums the fibrpc runs and takes each level's medians.
    pub(crate) fn fill(mut self, runs: Vec<Run>) -> Self {
        for run in &runs {
            self.calls += run.fibrpc.calls;
            self.errors += run.fibrpc.errors;
            self.retries += run.fibrpc.retries.unwrap_or(0);
            for (kind, count) in &run.fibrpc.failures {
                *self.failures.entry(kind).or_default() += count;
            }
        }
        self.levels = self
            .concurrency
            .iter()
            .filter_map(|&level| {
                let rounds: Vec<&Run> =
                    runs.iter().filter(|run| run.concurrency == level).collect();
                Level::of(&rounds)
            })
            .collect();
        self.runs = runs;
        self
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
    use std::time::Duration;

    use super::*;
    use crate::report::tests::measured;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0]), Some(3.0));
        assert_eq!(median(vec![5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    fn run(concurrency: usize, round: u32, fibrpc_us: u64, bare_us: u64) -> Run {
        let fibrpc = measured(Duration::from_micros(fibrpc_us), 100, 0);
        let bare = measured(Duration::from_micros(bare_us), 100, 0);
        Run {
            concurrency,
            round,
            ratios: Some(Ratios::of(&fibrpc, &bare)),
            fibrpc,
            baseline: Some(bare),
            batched: None,
            batched_ratios: None,
        }
    }

    #[test]
    fn a_level_takes_the_median_of_its_rounds_ratios() {
        let runs = [
            run(64, 1, 200, 100),
            run(64, 2, 100, 100),
            run(64, 3, 125, 100),
        ];
        let level = Level::of(&runs.iter().collect::<Vec<_>>()).unwrap();
        let ratios = level.ratios.unwrap();
        assert!((ratios.throughput - 0.8).abs() < 0.01, "{level:?}");
        assert!((ratios.p50 - 1.25).abs() < 0.01, "{level:?}");
        let (low, high) = level.throughput_ratio_range.unwrap();
        assert!((low - 0.5).abs() < 0.01 && (high - 1.0).abs() < 0.01);
        assert_eq!(level.rounds, 3);
        assert!(level.line().contains("0.80x"), "{}", level.line());
    }

    #[test]
    fn the_report_adds_up_the_runs_and_keeps_each_level() {
        let report = Report {
            transport: "memory",
            servers_run: "in-process",
            servers: 1,
            clients: 1,
            n: 30,
            warmup: 0,
            calls_per_run: 100,
            rounds: 2,
            concurrency: vec![1, 64],
            prefetch: 64,
            server_concurrency: 64,
            retry: false,
            calls: 0,
            errors: 0,
            failures: BTreeMap::new(),
            retries: 0,
            runs: Vec::new(),
            levels: Vec::new(),
        }
        .fill(vec![
            run(1, 1, 100, 100),
            run(1, 2, 100, 100),
            run(64, 1, 100, 50),
            run(64, 2, 100, 50),
        ]);
        assert_eq!(report.calls, 400);
        assert_eq!(report.levels.len(), 2);
        let value = serde_json::to_value(&report).unwrap();
        assert_eq!(value["levels"][1]["concurrency"], 64);
        assert!((value["levels"][1]["ratios"]["throughput"].as_f64().unwrap() - 0.5).abs() < 0.01);
        assert_eq!(value["runs"][3]["round"], 2);
        assert!(value["failures"].as_object().unwrap().is_empty());
    }
}
