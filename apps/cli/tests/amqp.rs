//! `fibrpc serve` and `fibrpc call` against the real RabbitMQ, and interop both ways with the
//! tutorial's Python client and server.

mod support;

use std::time::{Duration, Instant};

use support::*;

#[test]
fn serve_then_call_prints_832040() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("basic");
    let _server = serve(&queue, &[]);
    let mut call = fibrpc();
    call.args(["call", "--queue", &queue, "30", "100"]);
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "832040\n354224848179261915075\n");
}

#[test]
fn procedures_lists_what_fibrpc_serve_serves() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("procedures");
    let _server = serve(&queue, &[]);
    let mut list = fibrpc();
    list.args(["procedures", "--queue", &queue]);
    let output = run(list);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "fib  idempotent  application/x-bincode,application/json,text/plain\n\
         fibrpc.procedures  idempotent  application/x-bincode,application/json\n"
    );
    // Nobody serves this queue: one line and a failure.
    let mut nobody = fibrpc();
    nobody.args([
        "procedures",
        "--queue",
        &unique_queue("nobody"),
        "--timeout",
        "1s",
    ]);
    let output = run(nobody);
    assert!(!output.status.success());
    assert_eq!(stderr(&output).lines().count(), 1, "{}", stderr(&output));
}

#[test]
fn the_tutorials_python_client_gets_its_answer_from_fibrpc_serve() {
    if !rabbitmq_available() {
        return;
    }
    let python = python_with_pika();
    let queue = unique_queue("py-client");
    let _server = serve(&queue, &[]);
    let mut client = std::process::Command::new(python);
    client
        .arg(interop_script("tutorial_client.py"))
        .args([&queue, "30"]);
    let output = run(client);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        " [x] Requesting fib(30)\n [.] Got 832040\n"
    );
}

#[test]
fn fibrpc_call_gets_its_answer_from_the_tutorials_python_server() {
    if !rabbitmq_available() {
        return;
    }
    let python = python_with_pika();
    let queue = unique_queue("py-server");
    let mut server = std::process::Command::new(python);
    server
        .arg(interop_script("tutorial_server.py"))
        .args([&queue, "1", "30"]);
    let mut server = Process::start(server, "Awaiting RPC requests");
    let mut call = fibrpc();
    call.args(["call", "--text", "--queue", &queue, "30"]);
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "832040\n");
    server.wait_for_line("fib(30)");
    assert!(server.wait().success());
}

/// An address list: the first address refuses (nothing on port 1), so server and client go
/// on to the second, a `host:port` taking the first's credentials; the password never shows.
#[test]
fn serve_and_call_take_an_address_list() {
    if !rabbitmq_available() {
        return;
    }
    let list = "amqp://guest:guest@127.0.0.1:1/%2f,127.0.0.1:5672";
    let queue = unique_queue("address-list");
    let _server = serve(&queue, &["--amqp-url", list]);
    let mut call = fibrpc();
    call.args(["call", "--amqp-url", list, "--queue", &queue, "30"]);
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "832040\n");
    let warnings = stderr(&output);
    assert!(
        warnings.contains("127.0.0.1:1"),
        "the refusal is logged: {warnings}"
    );
    assert!(!warnings.contains("guest:guest"), "{warnings}");
}

#[test]
fn a_call_to_a_missing_queue_fails_fast() {
    if !rabbitmq_available() {
        return;
    }
    let mut call = fibrpc();
    call.args(["call", "--queue", &unique_queue("nobody"), "30"]);
    let started = Instant::now();
    let output = run(call);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("no such queue"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_unreachable_broker_is_one_clear_line_without_the_password() {
    let mut call = fibrpc();
    call.args([
        "call",
        "--amqp-url",
        "amqp://guest:sup3rsecret@127.0.0.1:1/%2f",
        "30",
    ]);
    let started = Instant::now();
    let output = run(call);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("127.0.0.1:1"), "{message}");
    assert!(!message.contains("sup3rsecret"), "{message}");
    assert_eq!(message.trim().lines().count(), 1, "{message}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("sigterm");
    let mut server = serve(&queue, &[]);
    let mut call = fibrpc();
    call.args(["call", "--queue", &queue, "10"]);
    assert!(run(call).status.success());
    // The server acknowledges right after it sent the reply; the caller may have its reply
    // first. Once the broker holds nothing unacknowledged, nothing is in flight.
    assert!(
        nothing_unacknowledged(&queue),
        "the request was never acknowledged"
    );
    server.signal("TERM");
    let stopping = server.wait_for_line("shutting down");
    assert!(stopping.contains("in_flight=0"), "{stopping}");
    assert!(server.wait().success());
}

/// Whether RabbitMQ holds no unacknowledged message of `queue`, asked until it does (10 s at
/// most).
fn nothing_unacknowledged(queue: &str) -> bool {
    let give_up = Instant::now() + Duration::from_secs(10);
    while Instant::now() < give_up {
        let output = std::process::Command::new("rabbitmqctl")
            .args(["-q", "list_queues", "name", "messages_unacknowledged"])
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&output.stdout).into_owned();
        let unacked = listing.lines().find_map(|line| {
            let (name, count) = line.split_once('\t')?;
            (name == queue).then(|| count.trim().to_owned())
        });
        if unacked.as_deref() == Some("0") {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
