//! fib(n) computed and rendered to decimal, as a server answers a text request.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};

fn fib_to_decimal(c: &mut Criterion) {
    let mut group = c.benchmark_group("fib_to_decimal");
    for n in [30u64, 1_000, 100_000, 1_000_000] {
        if n >= 100_000 {
            group.sample_size(10);
        }
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, &n| {
            b.iter(|| fibrpc_domain::fib(std::hint::black_box(n)).to_string())
        });
    }
    group.finish();
}

fn fib_only(c: &mut Criterion) {
    c.bench_function("fib_only/30", |b| {
        b.iter(|| fibrpc_domain::fib(std::hint::black_box(30)))
    });
    c.bench_function("fib_only/100000", |b| {
        b.iter(|| fibrpc_domain::fib(std::hint::black_box(100_000)))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(2));
    targets = fib_to_decimal, fib_only
}
criterion_main!(benches);
