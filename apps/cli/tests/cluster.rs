//! `fibrpc bench --transport amqp --amqp-url <3 nodes> --retry` on the three-node cluster of
//! `scripts/rabbitmq-cluster.sh` (CI starts it) survives a SIGKILL of the node its client and
//! servers are connected to, in the middle of its run, with every call answered correctly.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::*;

const NODE_PORTS: [u16; 3] = [5681, 5682, 5683];

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/rabbitmq-cluster.sh")
}

fn cluster(args: &[&str]) -> String {
    let output = Command::new("bash")
        .arg(script())
        .args(args)
        .output()
        .expect("cannot run scripts/rabbitmq-cluster.sh");
    assert!(
        output.status.success(),
        "rabbitmq-cluster.sh {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// True when the three nodes answer; with CI=true a missing cluster fails the test.
fn cluster_up() -> bool {
    let up = NODE_PORTS.iter().all(|port| {
        let address = SocketAddr::from(([127, 0, 0, 1], *port));
        TcpStream::connect_timeout(&address, Duration::from_secs(2)).is_ok()
    });
    if !up {
        let hint = "scripts/rabbitmq-cluster.sh up";
        fibrpc_test_support::skip_or_fail("the test cluster", "a node does not answer", hint);
    }
    up
}

/// Restarts any node left down, so that a failed test leaves the cluster whole.
struct Heal;

impl Drop for Heal {
    fn drop(&mut self) {
        let _ = Command::new("bash").arg(script()).arg("up").output();
    }
}

#[test]
fn bench_with_retry_survives_a_node_killed_mid_run() {
    if !cluster_up() {
        return;
    }
    let _heal = Heal;
    let urls = cluster(&["urls"]);
    let queue = unique_queue("cluster-bench");
    // The quorum queue, led by node 2, declared as `fibrpc serve --queue-type quorum` does.
    let mut declare = fibrpc();
    declare.args([
        "serve",
        "--amqp-url",
        "amqp://guest:guest@127.0.0.1:5682/%2f",
        "--queue",
        &queue,
        "--queue-type",
        "quorum",
    ]);
    let mut declared = Process::start(declare, "Awaiting RPC requests");
    declared.signal("TERM");
    assert!(declared.wait().success());

    // Client and servers connect to node 1, the first address; it is killed as the second of
    // three rounds starts.
    let json = TempFile::new("cluster-bench.json");
    let mut bench = fibrpc();
    bench.args([
        "bench",
        "--transport",
        "amqp",
        "--amqp-url",
        &urls,
        "--queue",
        &queue,
        "--retry",
        "--servers",
        "2",
        "--rounds",
        "3",
        "--calls",
        "3000",
        "--warmup",
        "0",
        "--json",
        json.path(),
    ]);
    let mut running = Process::start(bench, "round 2/3");
    cluster(&["kill", "1"]);
    let status = running.wait();
    assert!(status.success(), "the bench failed: {status}");

    let report = json.json();
    assert_eq!(report["calls"], 9000, "{report}");
    assert_eq!(report["errors"], 0, "{report}");
    assert!(
        report["retries"]
            .as_u64()
            .is_some_and(|retries| retries > 0),
        "no call was in flight at the kill: {report}"
    );
    println!(
        "bench over the cluster, node 1 SIGKILLed mid-run: {} calls, {} errors, {} retries, failures {}",
        report["calls"], report["errors"], report["retries"], report["failures"]
    );

    cluster(&["start", "1"]);
    delete_cluster_queue(&urls, &queue);
}

fn delete_cluster_queue(urls: &str, queue: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let admin = fibrpc_app::connect(urls).await.unwrap().admin;
        admin.delete_queue(queue).await.unwrap();
    });
}
