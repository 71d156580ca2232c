//! `fibrpc serve --transport nats` as NATS users meet it, through a client no one here wrote:
//! nats-py (NATS's own Python client, from PyPI) asks for fib on the queue's subject and on
//! the procedure's own, reads the NATS services API, and sees two servers share a queue
//! group; against a JetStream-mode server its requests never get a publish ack as answer.

mod support;

use std::process::Command;

use serde_json::Value;
use support::*;

/// Runs `interop/nats_client.py` with `args`; its stdout lines.
fn nats_py(args: &[&str]) -> Vec<String> {
    let mut command = Command::new(python_with_nats());
    command.arg(interop_script("nats_client.py")).args(args);
    let output = run(command);
    assert!(output.status.success(), "nats-py: {}", stderr(&output));
    stdout(&output).lines().map(str::to_owned).collect()
}

/// The line of `lines` that starts with `key`, without it.
fn line<'a>(lines: &'a [String], key: &str) -> &'a str {
    lines
        .iter()
        .find_map(|line| line.strip_prefix(&format!("{key} ")))
        .unwrap_or_else(|| panic!("no {key:?} line in {lines:?}"))
}

#[test]
fn nats_py_calls_fib_and_reads_the_services_api() {
    if !nats_available() {
        return;
    }
    let queue = unique_queue("nats-py");
    let mut server = serve(&queue, &["--transport", "nats"]);
    let lines = nats_py(&["serve", &queue]);
    assert_eq!(line(&lines, "plain"), "832040");
    assert_eq!(line(&lines, "named"), "55");
    assert_eq!(line(&lines, "header"), "6765");
    // fib's own error (n above --max-n), as the services API marks it for NATS clients.
    let refused = line(&lines, "error");
    assert!(
        refused.starts_with("400 ") && refused.contains("1000001"),
        "{refused}"
    );

    let name = queue.replace('.', "_");
    let ping: Value = serde_json::from_str(line(&lines, "PING")).unwrap();
    assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
    assert_eq!(ping["name"], name.as_str());
    let info: Value = serde_json::from_str(line(&lines, "INFO")).unwrap();
    assert_eq!(info["type"], "io.nats.micro.v1.info_response");
    let endpoints = info["endpoints"].as_array().unwrap();
    // The queue's subject, fib's, and discovery's (which every server answers).
    assert_eq!(endpoints.len(), 3, "{endpoints:?}");
    assert_eq!(endpoints[0]["subject"], queue.as_str());
    assert_eq!(endpoints[1]["subject"], format!("{queue}.fib").as_str());
    assert_eq!(
        endpoints[2]["subject"],
        format!("{queue}.fibrpc.procedures").as_str()
    );
    assert!(endpoints
        .iter()
        .all(|endpoint| endpoint["queue_group"] == "q"));
    let stats: Value = serde_json::from_str(line(&lines, "STATS")).unwrap();
    assert_eq!(stats["type"], "io.nats.micro.v1.stats_response");
    // Counted by the procedure a request names (by subject or header): one named none.
    assert_eq!(stats["endpoints"][0]["num_requests"], 1);
    assert_eq!(stats["endpoints"][1]["num_requests"], 3);
    assert_eq!(stats["endpoints"][0]["num_errors"], 0);
    assert_eq!(stats["endpoints"][1]["num_errors"], 1);
    let last_error = stats["endpoints"][1]["last_error"].as_str().unwrap();
    assert!(last_error.starts_with("400:"), "{last_error}");
    assert!(stats["endpoints"][0]["processing_time"].as_u64().unwrap() > 0);

    server.signal("TERM");
    assert_eq!(replies_of(&mut server), 4);
}

#[test]
fn two_servers_in_one_queue_group_share_the_requests() {
    if !nats_available() {
        return;
    }
    const CALLS: u64 = 40;
    let queue = unique_queue("nats-shared");
    let mut servers = [
        serve(&queue, &["--transport", "nats"]),
        serve(&queue, &["--transport", "nats"]),
    ];
    let lines = nats_py(&["shared", &queue, &CALLS.to_string()]);
    assert_eq!(line(&lines, "shared"), CALLS.to_string());
    let mut answered = Vec::new();
    for server in &mut servers {
        server.signal("TERM");
        answered.push(replies_of(server));
    }
    assert_eq!(answered.iter().sum::<u64>(), CALLS, "{answered:?}");
    // Each request goes to one member at random: all 40 to one has odds of 2^-39.
    assert!(answered.iter().all(|&count| count > 0), "{answered:?}");
}

#[test]
fn a_request_to_a_jetstream_mode_queue_never_gets_a_publish_ack() {
    if !nats_available() {
        return;
    }
    let queue = unique_queue("nats-js");
    let url = "nats://127.0.0.1:4222?mode=jetstream";
    let mut server = serve(&queue, &["--transport", "nats", "--nats-url", url]);
    let lines = nats_py(&["jetstream", &queue]);
    // The queue's subject is core NATS's, apart from the stream's (`fibrpc.req.<queue>`):
    // a JetStream-mode server does not take core requests, so "no responders" comes back.
    assert_eq!(line(&lines, "jetstream"), format!("{queue} no-responders"));
    // The stream's subject is where JetStream-mode clients publish, with their inbox in a
    // header; JetStream acknowledges whatever is published there, as it does on any stream's
    // subject (docs/adapters.md). The acknowledgement is all that comes back: not an answer.
    let stored = line(&lines, &format!("jetstream fibrpc.req.{queue}"));
    assert!(stored.starts_with("publish-ack"), "{stored}");
    server.signal("TERM");
    assert_eq!(replies_of(&mut server), 0);
}
