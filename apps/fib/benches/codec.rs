//! Encoding and decoding fib's requests and replies in every codec it speaks.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use fibrpc_domain::fib;
use fibrpc_fib::{Fib, FibWire};
use fibrpc_rpc::Wire;

fn codecs(c: &mut Criterion) {
    for &codec in <FibWire as Wire<Fib>>::CODECS {
        let name = codec.content_type().replace('/', "-");
        let request = FibWire::encode_request(codec, &30).unwrap();
        c.bench_function(&format!("{name}/encode_request"), |b| {
            b.iter(|| FibWire::encode_request(codec, std::hint::black_box(&30)))
        });
        c.bench_function(&format!("{name}/decode_request"), |b| {
            b.iter(|| FibWire::decode_request(codec, std::hint::black_box(&request)))
        });
        for n in [30u64, 10_000] {
            let outcome = Ok(fib(n));
            let reply = FibWire::encode_reply(codec, &outcome).unwrap();
            c.bench_function(&format!("{name}/encode_reply/{n}"), |b| {
                b.iter(|| FibWire::encode_reply(codec, std::hint::black_box(&outcome)))
            });
            c.bench_function(&format!("{name}/decode_reply/{n}"), |b| {
                b.iter(|| FibWire::decode_reply(codec, std::hint::black_box(&reply), None))
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
