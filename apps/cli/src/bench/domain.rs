//! `fibrpc bench --domain`: fib(n) computed and rendered to decimal, no transport; best of
//! several runs (the figure compared with GMP by benches/gmp_compare.sh).

use std::time::{Duration, Instant};

use crate::args::BenchArgs;

pub fn run(args: &BenchArgs) -> Result<(), String> {
    let runs = 7;
    let mut best = Duration::MAX;
    let mut digits = 0;
    for _ in 0..runs {
        let started = Instant::now();
        let decimal = fibrpc_domain::fib(args.n).to_string();
        best = best.min(started.elapsed());
        digits = decimal.len();
    }
    // Small n: one call is too short to time alone.
    let repeats = 100_000u32;
    let started = Instant::now();
    let mut sink = 0usize;
    for _ in 0..repeats {
        sink = sink.wrapping_add(
            std::hint::black_box(fibrpc_domain::fib(std::hint::black_box(30)))
                .to_string()
                .len(),
        );
    }
    let fib30 = started.elapsed() / repeats;
    println!(
        "domain fib({}) computed and rendered: best of {runs} {:.3} ms ({digits} digits)",
        args.n,
        best.as_secs_f64() * 1e3
    );
    println!(
        "domain fib(30) computed and rendered: {} ns per call ({sink})",
        fib30.as_nanos()
    );
    Ok(())
}
