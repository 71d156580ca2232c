//! `fibrpc bench --domain`: fib(n) with no transport at all, computed and rendered to decimal
//! (what a server does for a text request), best of several runs; the figure
//! benches/gmp_compare.sh sets against GMP. Then fib(30) per call from a tight loop, the cost
//! of the domain inside every small-n call of the transport benchmarks.

use std::hint::black_box;
use std::time::{Duration, Instant};

use crate::args::BenchArgs;

/// Runs of fib(n) timed; the best is reported, as the least disturbed by the noisy machine.
const RUNS: u32 = 7;
/// Calls of fib(30) timed together: one alone is shorter than the clock's resolution.
const SMALL_REPEATS: u32 = 200_000;

pub fn run(args: &BenchArgs) -> Result<(), String> {
    if args.n > fibrpc_domain::DEFAULT_MAX_N * 10 {
        // fib(n) needs about 0.09 n bytes and time that grows faster than n.
        return Err(format!(
            "--n {} is too large for --domain (at most {})",
            args.n,
            fibrpc_domain::DEFAULT_MAX_N * 10
        ));
    }
    let mut rendered = Duration::MAX;
    let mut computed = Duration::MAX;
    let mut digits = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        let value = fibrpc_domain::fib(black_box(args.n));
        computed = computed.min(started.elapsed());
        let decimal = value.to_string();
        rendered = rendered.min(started.elapsed());
        digits = black_box(decimal).len();
    }
    // The first line is what scripts read (benches/gmp_compare.sh, benches/compare.sh).
    println!(
        "domain fib({}) computed and rendered: best of {RUNS} {:.3} ms ({digits} digits)",
        args.n,
        rendered.as_secs_f64() * 1e3
    );
    println!(
        "domain fib({}) computed only: best of {RUNS} {:.3} ms",
        args.n,
        computed.as_secs_f64() * 1e3
    );

    let started = Instant::now();
    for _ in 0..SMALL_REPEATS {
        black_box(fibrpc_domain::fib(black_box(30)));
    }
    let computed_30 = started.elapsed() / SMALL_REPEATS;
    let started = Instant::now();
    for _ in 0..SMALL_REPEATS {
        black_box(fibrpc_domain::fib(black_box(30)).to_string());
    }
    let rendered_30 = started.elapsed() / SMALL_REPEATS;
    println!(
        "domain fib(30) computed only: {} ns per call",
        computed_30.as_nanos()
    );
    // Last line: scripts read it with `tail -1`.
    println!(
        "domain fib(30) computed and rendered: {} ns per call",
        rendered_30.as_nanos()
    );
    Ok(())
}
