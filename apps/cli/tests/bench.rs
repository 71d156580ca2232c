//! `fibrpc bare-echo` and `fibrpc bench` against the real brokers: the bare baseline
//! answers, the separate-process form completes with CPU figures, and servers started by the
//! user are measured.

mod support;

use support::*;

fn bench_json(extra: &[&str], json: &TempFile) -> serde_json::Value {
    let mut bench = fibrpc();
    bench
        .args(["bench", "--json", json.path(), "--warmup", "50"])
        .args(extra);
    let output = run(bench);
    assert!(
        output.status.success(),
        "{}\n{}",
        stdout(&output),
        stderr(&output)
    );
    json.json()
}

#[test]
fn bare_echo_answers_with_the_request_and_stops_on_sigterm() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("bare-echo");
    let mut command = fibrpc();
    command.args(["bare-echo", "--queue", &queue]);
    let mut echo = Process::start(command, "Awaiting RPC requests");
    // fibrpc's client reads an untyped reply as the tutorial's text: the echo of "30" is 30,
    // where a fib server would answer 832040.
    let mut call = fibrpc();
    call.args(["call", "--text", "--queue", &queue, "30"]);
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "30\n");
    echo.signal("TERM");
    assert!(echo.wait().success());
    assert!(echo
        .wait_for_line("Stopped after")
        .contains("after 1 replies"));
    delete_amqp_queues(&[&queue]);
}

#[test]
fn bench_with_server_processes_and_baseline_has_no_errors_and_cpu_figures() {
    if !rabbitmq_available() {
        return;
    }
    let json = TempFile::new("process.json");
    let report = bench_json(
        &[
            "--transport",
            "amqp",
            "--baseline",
            "--server-process",
            "--calls",
            "500",
            "--concurrency",
            "8",
        ],
        &json,
    );
    assert_eq!(report["servers_run"], "process");
    assert_eq!(report["calls"], 500);
    assert_eq!(report["errors"], 0);
    let run = &report["runs"][0];
    for side in ["fibrpc", "baseline"] {
        assert_eq!(run[side]["errors"], 0, "{side}: {run}");
        let cpu = &run[side]["cpu"];
        // The client and the server are separate processes, both read from /proc.
        assert_eq!(cpu["servers_in_client"], false, "{side}: {cpu}");
        assert!(cpu["client_us"].as_f64().unwrap() > 0.0, "{side}: {cpu}");
        assert!(cpu["server_us"].as_f64().unwrap() > 0.0, "{side}: {cpu}");
        assert!(cpu.get("broker_us").is_some(), "{side}: {cpu}");
        assert!(cpu["total_us"].as_f64().unwrap() >= cpu["client_us"].as_f64().unwrap());
    }
    assert!(run["ratios"]["throughput"].as_f64().unwrap() > 0.0);
}

#[test]
fn bench_measures_servers_the_user_started() {
    if !rabbitmq_available() {
        return;
    }
    let (queue, bare_queue) = (unique_queue("external"), unique_queue("external-bare"));
    let _server = serve(&queue, &["--prefetch", "16"]);
    let mut echo = fibrpc();
    echo.args(["bare-echo", "--queue", &bare_queue]);
    let _echo = Process::start(echo, "Awaiting RPC requests");
    let json = TempFile::new("external.json");
    let report = bench_json(
        &[
            "--transport",
            "amqp",
            "--servers",
            "0",
            "--queue",
            &queue,
            "--baseline",
            "--baseline-queue",
            &bare_queue,
            "--retry",
            "--calls",
            "300",
            "--concurrency",
            "4",
        ],
        &json,
    );
    assert_eq!(report["servers_run"], "external");
    assert_eq!(
        (report["calls"].as_u64(), report["errors"].as_u64()),
        (Some(300), Some(0))
    );
    assert_eq!(report["retry"], true);
    assert_eq!(report["retries"], 0);
    // Found by the queue on their command line.
    let run = &report["runs"][0];
    assert!(
        run["fibrpc"]["cpu"]["server_us"].as_f64().unwrap() > 0.0,
        "{run}"
    );
    assert!(
        run["baseline"]["cpu"]["server_us"].as_f64().unwrap() > 0.0,
        "{run}"
    );
    delete_amqp_queues(&[&queue, &bare_queue]);
}

#[test]
fn bench_over_nats_with_server_processes_and_baseline() {
    if !nats_available() {
        return;
    }
    let json = TempFile::new("nats.json");
    let report = bench_json(
        &[
            "--transport",
            "nats",
            "--baseline",
            "--server-process",
            "--calls",
            "300",
            "--concurrency",
            "8",
        ],
        &json,
    );
    assert_eq!(report["transport"], "nats");
    assert_eq!(report["errors"], 0);
    assert_eq!(report["runs"][0]["baseline"]["errors"], 0);
    assert!(
        report["runs"][0]["baseline"]["cpu"]["server_us"]
            .as_f64()
            .unwrap()
            > 0.0
    );
}

#[test]
fn bench_over_redis_answers_every_call() {
    if !redis_available() {
        return;
    }
    let json = TempFile::new("redis.json");
    let args = [
        "--transport",
        "redis",
        "--calls",
        "500",
        "--concurrency",
        "16",
    ];
    let report = bench_json(&args, &json);
    assert_eq!(report["transport"], "redis");
    assert_eq!(
        (report["calls"].as_u64(), report["errors"].as_u64()),
        (Some(500), Some(0))
    );
}

#[test]
fn bench_on_quorum_request_queues_declares_both_sides_alike() {
    if !rabbitmq_available() {
        return;
    }
    let json = TempFile::new("quorum.json");
    let report = bench_json(
        &[
            "--transport",
            "amqp",
            "--baseline",
            "--server-process",
            "--queue-type",
            "quorum",
            "--calls",
            "300",
            "--concurrency",
            "8",
        ],
        &json,
    );
    assert_eq!(
        (report["calls"].as_u64(), report["errors"].as_u64()),
        (Some(300), Some(0))
    );
    assert_eq!(report["runs"][0]["baseline"]["errors"], 0);
}
