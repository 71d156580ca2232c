//! Round-trip latencies: raw samples while a run goes, one HDR histogram afterwards.

use std::time::Duration;

use hdrhistogram::Histogram;

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

    pub(crate) fn extend(&mut self, other: Latencies) {
        self.0.extend(other.0);
    }

    /// 1 ns to 60 s, 3 significant digits: a bare in-process round trip takes well under a
    /// microsecond, so whole microseconds would make its percentiles, and the p50 ratio, a
    /// matter of rounding.
    pub(crate) fn histogram(&self) -> Result<Histogram<u64>, String> {
        let mut histogram = empty_histogram()?;
        for &nanos in &self.0 {
            // Saturating keeps an outlier past 60 s in the count, at the top bucket.
            histogram.saturating_record(nanos.max(1));
        }
        Ok(histogram)
    }
}

pub(crate) fn empty_histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|error| format!("cannot make a histogram: {error}"))
}
