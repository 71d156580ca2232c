//! How long a fault stalled a stream of calls, from the instants the calls completed.

use std::time::{Duration, Instant};

/// Windows over which throughput is counted.
const WINDOW: Duration = Duration::from_millis(250);
const STEP: Duration = Duration::from_millis(50);

/// What a fault did to throughput.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Recovery {
    /// Calls per second from the start until the fault.
    pub baseline_per_second: f64,
    /// From the fault until throughput was back at half the baseline or more, after it had
    /// fallen below that; zero if it never fell. None if it had not come back by the end.
    pub back_after: Option<Duration>,
    /// The longest time after the fault in which no call completed.
    pub longest_silence: Duration,
}

/// Throughput is "down" in a window of [`WINDOW`] after `fault` that completes fewer than half
/// the calls an average window did before it, and "back" with the first completion of the
/// first window after that which completes at least half again.
pub fn recovery(start: Instant, fault: Instant, completions: &[Instant]) -> Recovery {
    let mut done: Vec<Instant> = completions.to_vec();
    done.sort();
    let before = done.iter().filter(|&&at| at <= fault).count();
    let baseline_per_second = before as f64 / fault.duration_since(start).as_secs_f64().max(1e-9);
    let enough = (baseline_per_second * WINDOW.as_secs_f64() / 2.0).max(1.0);
    let end = done.last().copied().unwrap_or(fault).max(fault);
    let in_window = |from: Instant| {
        let to = from + WINDOW;
        done.partition_point(|&at| at < to) - done.partition_point(|&at| at < from)
    };
    let mut fell = false;
    let mut back_after = None;
    let mut from = fault;
    while from + WINDOW <= end {
        let healthy = in_window(from) as f64 >= enough;
        if !healthy {
            fell = true;
        } else if fell {
            let first = done[done.partition_point(|&at| at < from)];
            back_after = Some(first.duration_since(fault));
            break;
        }
        from += STEP;
    }
    if !fell {
        back_after = Some(Duration::ZERO);
    }
    let mut longest_silence = Duration::ZERO;
    let mut previous = fault;
    for &at in done.iter().filter(|&&at| at > fault) {
        longest_silence = longest_silence.max(at.duration_since(previous));
        previous = at;
    }
    Recovery {
        baseline_per_second,
        back_after,
        longest_silence,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One completion every `every`, from `from` for `count` calls.
    fn steady(from: Instant, every: Duration, count: u32) -> Vec<Instant> {
        (1..=count).map(|k| from + every * k).collect()
    }

    #[test]
    fn a_stall_is_measured_from_the_fault_to_the_return() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let fault = start + ms(1000);
        // 1 call/ms until the fault, nothing for 2 s, then 1 call/ms again for 1 s.
        let mut done = steady(start, ms(1), 1000);
        done.extend(steady(fault + ms(2000), ms(1), 1000));
        let recovery = recovery(start, fault, &done);
        assert!((recovery.baseline_per_second - 1000.0).abs() < 1.0);
        let back = recovery.back_after.unwrap();
        assert!(back >= ms(1950) && back <= ms(2050), "{back:?}");
        assert!(recovery.longest_silence >= ms(1999), "{recovery:?}");
    }

    #[test]
    fn no_dip_is_no_recovery_time_and_no_return_is_none() {
        let start = Instant::now();
        let ms = Duration::from_millis;
        let fault = start + ms(1000);
        let done = steady(start, ms(1), 3000);
        assert_eq!(
            recovery(start, fault, &done).back_after,
            Some(Duration::ZERO)
        );
        // Completions stop at the fault and a few trickle in much later, far too few.
        let mut stalled = steady(start, ms(1), 1000);
        stalled.extend(steady(fault + ms(500), ms(400), 5));
        assert_eq!(recovery(start, fault, &stalled).back_after, None);
    }
}
