//! Encoding and decoding requests and replies in both codecs.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fibrpc_domain::{fib, FibRequest, FibResponse};
use fibrpc_rpc::Codec;

fn codecs(c: &mut Criterion) {
    for codec in [Codec::Bincode, Codec::Text] {
        let name = format!("{codec:?}").to_lowercase();
        let request = codec.encode_request(FibRequest { n: 30 });
        c.bench_function(&format!("{name}/encode_request"), |b| {
            b.iter(|| codec.encode_request(std::hint::black_box(FibRequest { n: 30 })))
        });
        c.bench_function(&format!("{name}/decode_request"), |b| {
            b.iter(|| codec.decode_request(std::hint::black_box(&request)))
        });
        for n in [30u64, 10_000] {
            let outcome = Ok(FibResponse::new(fib(n)));
            let reply = codec.encode_reply(&outcome);
            c.bench_function(&format!("{name}/encode_reply/{n}"), |b| {
                b.iter(|| codec.encode_reply(std::hint::black_box(&outcome)))
            });
            c.bench_function(&format!("{name}/decode_reply/{n}"), |b| {
                b.iter(|| codec.decode_reply(std::hint::black_box(&reply)))
            });
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(1));
    targets = codecs
}
criterion_main!(benches);
