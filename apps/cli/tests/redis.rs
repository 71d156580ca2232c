//! `fibrpc serve` and `fibrpc call` over Redis (`--transport redis`); the bench's run over Redis
//! is in bench.rs.

mod support;

use support::*;

#[test]
fn serve_then_call_over_redis_prints_832040() {
    if !redis_available() {
        return;
    }
    let queue = unique_queue("redis");
    let redis = [
        "--transport",
        "redis",
        "--redis-url",
        "redis://127.0.0.1:6379",
    ];
    let mut server = serve(&queue, &redis);
    let mut call = fibrpc();
    call.args(["call", "--queue", &queue]).args(redis).arg("30");
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "832040\n");
    server.signal("TERM");
    assert_eq!(replies_of(&mut server), 1);
    delete_redis_queue(&queue);
}
