//! What `--plot` draws from the results: for one level, the latency percentiles of all its
//! rounds merged, fibrpc's and the baseline's; for a sweep, each level's median throughput.

use std::path::Path;

use crate::latency;
use crate::plot;
use crate::report::Measured;
use crate::results::{Report, Run};
use crate::settings::{Placement, Settings};

/// What the baseline is, for labels.
fn baseline_name(settings: &Settings<'_>) -> &'static str {
    if settings.args.transport.in_process {
        "baseline (channel echo)"
    } else {
        crate::baseline::label(&settings.args.transport)
    }
}

/// One level: the latency percentiles of all its rounds; a sweep: median throughput per level.
pub(crate) fn draw(settings: &Settings<'_>, report: &Report, path: &Path) -> Result<(), String> {
    let args = settings.args;
    let bare = baseline_name(settings);
    let servers = match settings.placement {
        Placement::InProcess => "servers in-process",
        Placement::Processes => "servers in their own processes",
        Placement::External { .. } => "servers started elsewhere",
    };
    let setting = format!(
        "{}, {servers}, {} round(s)",
        args.transport.name, args.rounds
    );
    if let [level] = settings.levels[..] {
        let merged = |pick: fn(&Run) -> Option<&Measured>| {
            let mut all = latency::empty_histogram()?;
            for run in &report.runs {
                if let Some(measured) = pick(run) {
                    all.add(&measured.histogram)
                        .map_err(|error| format!("cannot merge latencies: {error}"))?;
                }
            }
            Ok::<_, String>(all)
        };
        let ours = merged(|run| Some(&run.fibrpc))?;
        let theirs = merged(|run| run.baseline.as_ref())?;
        let mut distributions = vec![plot::Distribution {
            label: "fibrpc".to_owned(),
            histogram: &ours,
        }];
        if !theirs.is_empty() {
            distributions.push(plot::Distribution {
                label: bare.to_owned(),
                histogram: &theirs,
            });
        }
        let title = format!("round-trip latency, {level} in flight ({setting})");
        return plot::latency_percentiles(path, &title, &distributions);
    }
    let mut series = vec![plot::Series {
        label: "fibrpc".to_owned(),
        points: report
            .levels
            .iter()
            .map(|level| (level.concurrency, level.fibrpc_calls_per_sec))
            .collect(),
    }];
    let bare_points: Vec<_> = report
        .levels
        .iter()
        .filter_map(|level| Some((level.concurrency, level.baseline_calls_per_sec?)))
        .collect();
    if !bare_points.is_empty() {
        series.push(plot::Series {
            label: bare.to_owned(),
            points: bare_points,
        });
    }
    let batched_points: Vec<_> = report
        .levels
        .iter()
        .filter_map(|level| Some((level.concurrency, level.batched_calls_per_sec?)))
        .collect();
    if let (Some(n), false) = (args.batch, batched_points.is_empty()) {
        series.push(plot::Series {
            label: format!("fibrpc, coalesced requests (--batch {n})"),
            points: batched_points,
        });
    }
    let title = format!("throughput, median of rounds ({setting})");
    plot::throughput_sweep(path, &title, &series)
}
