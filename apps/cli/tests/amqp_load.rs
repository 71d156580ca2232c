//! Load over RabbitMQ with several `fibrpc serve` processes: shared fairly, and no call lost
//! when one of them is killed mid-load.

mod support;

use support::*;

const CALLS: u64 = 2000;

fn numbers() -> Vec<String> {
    (0..CALLS).map(|i| (i % 500).to_string()).collect()
}

fn expected_stdout() -> String {
    (0..CALLS)
        .map(|i| format!("{}\n", fibrpc_domain::fib(i % 500)))
        .collect()
}

#[test]
fn two_servers_share_2000_calls() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("share");
    let mut first = serve(&queue, &["--prefetch", "16"]);
    let mut second = serve(&queue, &["--prefetch", "16"]);
    let mut call = fibrpc();
    call.args(["call", "--timeout", "30s", "--queue", &queue])
        .args(numbers());
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output) == expected_stdout(),
        "wrong or missing answers"
    );

    first.signal("TERM");
    second.signal("TERM");
    let (a, b) = (replies_of(&mut first), replies_of(&mut second));
    assert_eq!(a + b, CALLS);
    assert!(a > 0 && b > 0, "one server did all the work: {a} / {b}");
}

#[test]
fn a_server_killed_mid_load_loses_no_call() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("sigkill");
    let mut doomed = fibrpc();
    doomed
        .env("RUST_LOG", "info,fibrpc_rpc::server=debug")
        .args(["serve", "--queue", &queue, "--prefetch", "50"]);
    let mut doomed = Process::start(doomed, "Awaiting RPC requests");
    let mut survivor = serve(&queue, &["--prefetch", "50"]);

    let mut call = fibrpc();
    call.args(["call", "--timeout", "30s", "--queue", &queue])
        .args(numbers());
    let caller = std::thread::spawn(move || run(call));
    doomed.wait_for_line("answered");
    doomed.signal("KILL");
    assert!(!doomed.wait().success());

    let output = caller.join().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output) == expected_stdout(),
        "wrong or missing answers"
    );
    survivor.signal("TERM");
    assert!(replies_of(&mut survivor) > 0);
}
