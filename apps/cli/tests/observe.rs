//! `fibrpc serve --metrics` against the real RabbitMQ: the counters match the calls made,
//! `/readyz` follows the broker connection, and a call's trace id shows in the client's and
//! the server's logs alike.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::*;

/// A `fibrpc serve --metrics` on any free port, and the address of its endpoint.
fn serve_observed(queue: &str, extra: &[&str]) -> (Process, String) {
    let mut command = fibrpc();
    command
        .args(["serve", "--queue", queue, "--metrics", "127.0.0.1:0"])
        .args(extra);
    let mut server = Process::spawn(command);
    let line = server.wait_for_line("Metrics on http://");
    let address = line
        .split("http://")
        .nth(1)
        .and_then(|url| url.strip_suffix("/metrics"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    server.wait_for_line("Awaiting RPC requests");
    (server, address)
}

/// GETs `path` from the endpoint: the status code and the body.
fn get(address: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("the metrics endpoint is not listening");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {address}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The value of the sample `series` (name and labels as Prometheus writes them), 0 if absent.
fn sample(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

/// Scrapes until `done` holds for what `/metrics` says, for at most `LIMIT`: a server counts
/// a request once it has acknowledged it, a moment after its caller has the reply.
fn scrape_until(address: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + LIMIT;
    loop {
        let (status, metrics) = get(address, "/metrics");
        assert_eq!(status, 200);
        if done(&metrics) {
            return metrics;
        }
        assert!(
            Instant::now() < deadline,
            "metrics never matched:\n{metrics}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn metrics_count_the_calls_made() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("metrics");
    let (_server, address) = serve_observed(&queue, &["--max-n", "1000"]);
    assert_eq!(get(&address, "/healthz"), (200, "ok\n".to_owned()));
    assert_eq!(get(&address, "/nothing-here").0, 404);

    let numbers: Vec<String> = (1..=10).map(|n| n.to_string()).collect();
    let mut call = fibrpc();
    call.args(["call", "--queue", &queue]).args(&numbers);
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    let mut refused = fibrpc();
    refused.args(["call", "--queue", &queue, "5000"]);
    assert!(!run(refused).status.success(), "n above --max-n is refused");

    let ok = r#"fibrpc_server_requests_total{procedure="fib",outcome="ok"}"#;
    let error = r#"fibrpc_server_requests_total{procedure="fib",outcome="error"}"#;
    let metrics = scrape_until(&address, |metrics| {
        sample(metrics, ok) == 10.0 && sample(metrics, error) == 1.0
    });
    let count = r#"fibrpc_server_request_duration_seconds_count{procedure="fib"}"#;
    assert_eq!(sample(&metrics, count), 11.0, "{metrics}");
    let all = r#"fibrpc_server_request_duration_seconds_bucket{procedure="fib",le="+Inf"}"#;
    assert_eq!(sample(&metrics, all), 11.0, "{metrics}");
    assert_eq!(sample(&metrics, "fibrpc_server_in_flight"), 0.0);
    assert!(metrics.contains("# TYPE fibrpc_transport_reconnects_total counter"));
    delete_amqp_queues(&[&queue]);
}

#[test]
fn a_bad_metrics_address_is_one_clear_line() {
    let mut bad = fibrpc();
    bad.args(["serve", "--metrics", "localhost-ish"]);
    let output = run(bad);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("invalid value 'localhost-ish' for '--metrics <ADDRESS>'"),
        "{}",
        stderr(&output)
    );

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    let mut in_use = fibrpc();
    in_use.args(["serve", "--metrics", &port]);
    let output = run(in_use);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.starts_with(&format!("fibrpc: cannot serve metrics on {port}: ")),
        "{message}"
    );
}

#[test]
fn readyz_follows_the_broker_connection() {
    if !rabbitmq_available() {
        return;
    }
    if !fibrpc_test_support::rabbitmq::have_rabbitmqctl() {
        fibrpc_test_support::skip_or_fail(
            "rabbitmqctl",
            "cannot run it",
            "run the test where the broker's Erlang cookie is readable",
        );
        return;
    }
    let queue = unique_queue("readyz");
    let (server, address) = serve_observed(&queue, &[]);
    assert_eq!(get(&address, "/readyz"), (200, "ready\n".to_owned()));

    // The server reconnects within a few tens of milliseconds, well before rabbitmqctl
    // returns: a poller watches /readyz meanwhile and reports what it saw.
    let poller = {
        let address = address.clone();
        std::thread::spawn(move || {
            let deadline = Instant::now() + LIMIT;
            let mut saw_not_ready = None;
            while Instant::now() < deadline {
                let (status, body) = get(&address, "/readyz");
                match (status, &saw_not_ready) {
                    (503, None) => saw_not_ready = Some(body),
                    (200, Some(_)) => return saw_not_ready,
                    _ => {}
                }
            }
            saw_not_ready
        })
    };
    // Only this server's connection: its name carries its process id (quoted, so that
    // "fibrpc 12" does not match "fibrpc 123").
    let name = format!("\"fibrpc {}\"", server.child.id());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let severed = runtime
        .block_on(fibrpc_test_support::rabbitmq::sever_connections_named(
            &name,
        ))
        .unwrap();
    assert_eq!(severed, 1, "the server's connection was not found");
    let not_ready = poller.join().unwrap();
    assert_eq!(not_ready.as_deref(), Some("not ready: reconnecting\n"));
    assert_eq!(get(&address, "/readyz").0, 200, "ready again");
    let reconnects = r#"fibrpc_transport_reconnects_total{role="server"}"#;
    scrape_until(&address, |metrics| sample(metrics, reconnects) == 1.0);

    let mut call = fibrpc();
    call.args(["call", "--queue", &queue, "30"]);
    let output = run(call);
    assert_eq!(stdout(&output), "832040\n", "{}", stderr(&output));
    delete_amqp_queues(&[&queue]);
}

#[test]
fn a_calls_trace_id_is_the_same_in_client_and_server_logs() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("trace");
    let mut command = fibrpc();
    command
        .args(["serve", "--queue", &queue])
        .env("RUST_LOG", "info,fibrpc_rpc=debug,lapin=off");
    let mut server = Process::start(command, "Awaiting RPC requests");
    let mut call = fibrpc();
    call.args(["call", "--queue", &queue, "30"])
        .env("RUST_LOG", "fibrpc_rpc=debug");
    let output = run(call);
    assert_eq!(stdout(&output), "832040\n", "{}", stderr(&output));
    let client_logs = stderr(&output);
    let trace_id = trace_id_in(&client_logs)
        .unwrap_or_else(|| panic!("no trace_id in the client's logs:\n{client_logs}"));
    let answered = server.wait_for_line("answered");
    assert_eq!(
        trace_id_in(&answered).as_deref(),
        Some(trace_id.as_str()),
        "server: {answered}\nclient: {client_logs}"
    );
    delete_amqp_queues(&[&queue]);
}

/// The first `trace_id=<32 hex digits>` in `logs`.
fn trace_id_in(logs: &str) -> Option<String> {
    let (_, after) = logs.split_once("trace_id=")?;
    let id: String = after.chars().take_while(char::is_ascii_hexdigit).collect();
    (id.len() == 32).then_some(id)
}

/// `bench --metrics` measures with counting on: in process, and in `serve --metrics`
/// children (on any free port each).
#[test]
fn the_bench_runs_with_metrics_on() {
    let memory = ["--transport", "memory"];
    let processes = ["--transport", "amqp", "--server-process"];
    let mut runs = vec![&memory[..]];
    if rabbitmq_available() {
        runs.push(&processes[..]);
    }
    for transport in runs {
        let json = TempFile::new("metrics.json");
        let mut bench = fibrpc();
        bench
            .args(["bench", "--metrics", "--calls", "300", "--warmup", "20"])
            .args(["--json", json.path()])
            .args(transport);
        let output = run(bench);
        assert!(
            output.status.success(),
            "{transport:?}: {}",
            stderr(&output)
        );
        let report = json.json();
        assert_eq!(report["calls"], 300, "{transport:?}");
        assert_eq!(report["errors"], 0, "{transport:?}");
    }
}
