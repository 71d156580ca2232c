//! `--plot FILE.svg`: latency percentiles (HDR style) of fibrpc and the baseline for one
//! level, or throughput against calls in flight for a sweep.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::prelude::*;

const SIZE: (u32, u32) = (900, 560);
/// The deepest percentile drawn: 99.9999%.
const MAX_NINES: f64 = 6.0;
const COLOURS: [RGBColor; 2] = [RGBColor(200, 40, 40), RGBColor(30, 90, 200)];

/// A latency distribution: its label and its samples.
pub(crate) struct Distribution<'a> {
    pub label: String,
    pub histogram: &'a Histogram<u64>,
}

/// A throughput series: its label and (calls in flight, calls/s) points.
pub(crate) struct Series {
    pub label: String,
    pub points: Vec<(usize, f64)>,
}

/// The percentile an x of the chart stands for, as the axis labels it: x = log10(1 / (1 - p)),
/// so 0 is p0, 1 is p90, 2 is p99, 3 is p99.9, ...
fn percentile_label(x: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.round() as usize).saturating_sub(2);
    format!("{percent:.decimals$}%")
}

/// Latency (microseconds) at x from 0 up to the deepest percentile the samples can tell.
fn percentile_curve(histogram: &Histogram<u64>) -> Vec<(f64, f64)> {
    let deepest = (histogram.len().max(1) as f64).log10().min(MAX_NINES);
    let steps = (deepest * 50.0).ceil().max(1.0) as usize;
    (0..=steps)
        .map(|step| {
            let x = deepest * step as f64 / steps as f64;
            let quantile = 1.0 - 10f64.powf(-x);
            (x, histogram.value_at_quantile(quantile) as f64 / 1e3)
        })
        .collect()
}

pub(crate) fn latency_percentiles(
    path: &Path,
    title: &str,
    distributions: &[Distribution<'_>],
) -> Result<(), String> {
    let curves: Vec<(&str, Vec<(f64, f64)>)> = distributions
        .iter()
        .map(|d| (d.label.as_str(), percentile_curve(d.histogram)))
        .collect();
    let x_max = curves
        .iter()
        .flat_map(|(_, points)| points.last().map(|p| p.0))
        .fold(1.0, f64::max);
    let latencies = || {
        curves
            .iter()
            .flat_map(|(_, points)| points.iter().map(|p| p.1))
    };
    // A log scale: the median and the tail differ by orders of magnitude.
    let y_max = latencies().fold(1.0, f64::max) * 1.5;
    let y_min = latencies().fold(y_max, f64::min).max(0.01) / 1.5;
    draw(path, |root| {
        let mut chart = builder(root, title)
            .build_cartesian_2d(0.0..x_max.ceil(), (y_min..y_max).log_scale())
            .map_err(|error| error.to_string())?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (us, log scale)")
            .x_labels(x_max.ceil() as usize + 1)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_labels(20)
            // The log axis's minor lines would crowd into a grey band.
            .max_light_lines(1)
            .y_label_formatter(&|y| format!("{y}"))
            .draw()
            .map_err(|error| error.to_string())?;
        for (index, (label, points)) in curves.iter().enumerate() {
            let colour = COLOURS[index % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    colour.stroke_width(2),
                ))
                .map_err(|error| error.to_string())?
                .label(*label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
        }
        legend(&mut chart)
    })
}

pub(crate) fn throughput_sweep(path: &Path, title: &str, series: &[Series]) -> Result<(), String> {
    let levels = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0 as f64));
    let x_max = levels.fold(2.0, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(1.0, f64::max);
    draw(path, |root| {
        let mut chart = builder(root, title)
            .build_cartesian_2d((1.0..x_max).log_scale(), 0.0..y_max * 1.1)
            .map_err(|error| error.to_string())?;
        chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .x_desc("calls in flight")
            .y_desc("calls/s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|error| error.to_string())?;
        for (index, one) in series.iter().enumerate() {
            let colour = COLOURS[index % COLOURS.len()];
            let points: Vec<(f64, f64)> = one.points.iter().map(|&(x, y)| (x as f64, y)).collect();
            chart
                .draw_series(
                    LineSeries::new(points.iter().copied(), colour.stroke_width(2)).point_size(4),
                )
                .map_err(|error| error.to_string())?
                .label(one.label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
        }
        legend(&mut chart)
    })
}

type Root<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// The frame both charts share: title, margins, room for the axis labels.
fn builder<'a, 'b>(root: &'a Root<'b>, title: &str) -> ChartBuilder<'a, 'b, SVGBackend<'b>> {
    let mut builder = ChartBuilder::on(root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .margin_right(40)
        .x_label_area_size(45)
        .y_label_area_size(80);
    builder
}

fn draw(path: &Path, plot: impl FnOnce(&Root<'_>) -> Result<(), String>) -> Result<(), String> {
    let failed = |error: String| format!("cannot draw {}: {error}", path.display());
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|error| failed(error.to_string()))?;
    plot(&root).map_err(failed)?;
    root.present().map_err(|error| failed(error.to_string()))
}

fn legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|error| error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("fibrpc-plot-{}-{name}.svg", uuid::Uuid::new_v4()))
    }

    #[test]
    fn the_percentile_axis_counts_nines() {
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(0.0), "0%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
    }

    #[test]
    fn both_charts_are_written_as_svg_with_their_labels() {
        let mut fast = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let mut slow = fast.clone();
        for i in 1..=10_000u64 {
            fast.record(100_000 + i * 10).unwrap();
            slow.record(150_000 + i * 20).unwrap();
        }
        let path = temp("latency");
        let distributions = [
            Distribution {
                label: "fibrpc".into(),
                histogram: &slow,
            },
            Distribution {
                label: "baseline".into(),
                histogram: &fast,
            },
        ];
        latency_percentiles(&path, "64 in flight", &distributions).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(svg.starts_with("<svg") && svg.contains("fibrpc") && svg.contains("99.9%"));
        assert!(svg.contains("<polyline"), "no curve drawn");

        let path = temp("sweep");
        let series = [
            Series {
                label: "fibrpc".into(),
                points: vec![(1, 2000.0), (64, 12000.0), (256, 11500.0)],
            },
            Series {
                label: "baseline".into(),
                points: vec![(1, 2700.0), (64, 16000.0), (256, 15700.0)],
            },
        ];
        throughput_sweep(&path, "sweep", &series).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert!(svg.contains("calls in flight") && svg.contains("baseline"));
    }
}
