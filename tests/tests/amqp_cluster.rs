//! fibrpc on a three-node RabbitMQ cluster (`scripts/rabbitmq-cluster.sh up`; CI starts it):
//! servers on different nodes share one quorum request queue, and a node SIGKILLed under load
//! (the client's, or the queue leader's) costs no call: every call ends with the right answer,
//! exactly once, and the time until throughput is back is printed. The killed node is then
//! started again, rejoins, and takes servers and clients again.
//!
//! The tests kill nodes, so they take turns (`CLUSTER_LOCK`). Figures are printed and
//! appended to `target/cluster-report.md`; docs/scaling.md quotes a run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc_amqp::AmqpTransport;
use fibrpc_conformance::unique_queue;
use fibrpc_domain::{fib, Fibonacci};
use fibrpc_fib::Fib;
use fibrpc_rpc::{Backoff, ClientConfig, RetryPolicy, RpcClient, ServerConfig};
use fibrpc_test_support::RunningServer;
use fibrpc_tests::cluster::{Cluster, RestartOnDrop, CLUSTER_LOCK, NODES};
use fibrpc_tests::failures;
use fibrpc_tests::throughput::recovery;

/// The load of a failover run: calls, and calls in flight at once.
const CALLS: u64 = 5_000;
const IN_FLIGHT: usize = 64;
/// The node is killed once this many calls have completed.
const KILL_AFTER: u64 = CALLS / 3;
/// Each call's deadline, retries included: a failover must fit in it.
const DEADLINE: Duration = Duration::from_secs(30);

fn quick_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    }
}

/// A fib server on its own connection.
fn fib_server(transport: AmqpTransport, config: ServerConfig) -> RunningServer {
    RunningServer::start(
        Arc::new(transport),
        config,
        Fib::service(Fibonacci::default()),
    )
}

fn server_config(queue: &str) -> ServerConfig {
    ServerConfig {
        queue: queue.to_owned(),
        reconnect: quick_backoff(),
        ..ServerConfig::default()
    }
}

fn client_config(queue: &str) -> ClientConfig {
    ClientConfig {
        queue: queue.to_owned(),
        timeout: DEADLINE,
        retry: RetryPolicy::Idempotent {
            backoff: quick_backoff(),
        },
        reconnect: quick_backoff(),
        ..ClientConfig::default()
    }
}

/// A transport whose address list starts at `node`; it must connect there.
async fn transport_on(cluster: &Cluster, node: usize) -> AmqpTransport {
    let transport = AmqpTransport::connect(cluster.config_from(node))
        .await
        .expect("connect to the cluster");
    assert_eq!(on_node(cluster, &transport), Some(node));
    transport
}

fn on_node(cluster: &Cluster, transport: &AmqpTransport) -> Option<usize> {
    cluster.node_of(&transport.connected_address()?)
}

/// A server on each node, all consuming `queue`.
async fn servers_on_every_node(cluster: &Cluster, queue: &str) -> Vec<RunningServer> {
    let mut servers = Vec::new();
    for node in NODES {
        servers.push(fib_server(
            transport_on(cluster, node).await,
            server_config(queue),
        ));
    }
    servers
}

/// A stream of calls: fib(n) `count` times, `in_flight` at once, every answer checked. It
/// records each call's completion instant and the failures by kind, and announces when
/// `notify_at` calls have completed.
struct Load {
    completions: Mutex<Vec<Instant>>,
    failures: Mutex<BTreeMap<String, u64>>,
    done: AtomicU64,
    notify_at: u64,
    /// `notify_one` keeps a permit if nobody waits yet, so the announcement is never missed.
    reached: tokio::sync::Notify,
}

impl Load {
    fn new(count: u64, notify_at: u64) -> Arc<Self> {
        Arc::new(Self {
            completions: Mutex::new(Vec::with_capacity(count as usize)),
            failures: Mutex::default(),
            done: AtomicU64::new(0),
            notify_at,
            reached: tokio::sync::Notify::new(),
        })
    }

    async fn run(self: Arc<Self>, client: RpcClient, count: u64, in_flight: usize) {
        let next = Arc::new(AtomicU64::new(0));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..in_flight {
            let (client, load, next) = (client.clone(), self.clone(), next.clone());
            workers.spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        break;
                    }
                    let n = 100 + i % 400;
                    match client.call::<Fib>(n).await {
                        Ok(value) => assert_eq!(value, fib(n), "wrong answer for fib({n})"),
                        Err(error) => {
                            let mut failures = load.failures.lock().unwrap();
                            *failures.entry(failures::kind(&error)).or_default() += 1;
                        }
                    }
                    load.completions.lock().unwrap().push(Instant::now());
                    if load.done.fetch_add(1, Ordering::Relaxed) + 1 == load.notify_at {
                        load.reached.notify_one();
                    }
                }
            });
        }
        while let Some(joined) = workers.join_next().await {
            joined.expect("a load worker panicked");
        }
    }

    fn failures(&self) -> BTreeMap<String, u64> {
        self.failures.lock().unwrap().clone()
    }

    fn completed(&self) -> usize {
        self.completions.lock().unwrap().len()
    }
}

fn report(line: &str) {
    println!("{line}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/cluster-report.md");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        use std::io::Write as _;
        let _ = writeln!(file, "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn servers_on_different_nodes_share_one_quorum_queue() {
    let Some(cluster) = Cluster::up_or_skip().await else {
        return;
    };
    let _turn = CLUSTER_LOCK.lock().await;
    let queue = unique_queue("cluster-share");
    cluster.declare_quorum_queue(&queue, 1).await;
    let first = fib_server(transport_on(&cluster, 1).await, server_config(&queue));
    let second = fib_server(transport_on(&cluster, 2).await, server_config(&queue));
    let client = RpcClient::connect(
        Arc::new(transport_on(&cluster, 3).await),
        client_config(&queue),
    )
    .await
    .unwrap();

    let load = Load::new(400, 0);
    load.clone().run(client, 400, 32).await;
    assert!(load.failures().is_empty(), "{:?}", load.failures());
    let (first, second) = (first.stop().await, second.stop().await);
    assert_eq!(first.answered() + second.answered(), 400);
    assert!(
        first.answered() > 0 && second.answered() > 0,
        "both servers answer: {} and {}",
        first.answered(),
        second.answered()
    );
    cluster.delete_queue(&queue).await;
}

/// Which node a failover run kills.
#[derive(Clone, Copy)]
enum Victim {
    /// The node the client is connected to (its reply queue goes with it).
    ClientsNode,
    /// The node that leads the quorum request queue.
    LeadersNode,
}

/// A failover run: the queue led by one node, the client on another, a server on each; after
/// a third of the calls the victim is SIGKILLed. Then it is started again and must rejoin.
async fn failover_run(victim: Victim) {
    let Some(cluster) = Cluster::up_or_skip().await else {
        return;
    };
    let _turn = CLUSTER_LOCK.lock().await;
    let _heal = RestartOnDrop;
    let (leader, client_node) = match victim {
        Victim::ClientsNode => (1, 2),
        Victim::LeadersNode => (3, 1),
    };
    let killed = match victim {
        Victim::ClientsNode => client_node,
        Victim::LeadersNode => leader,
    };
    let queue = unique_queue("cluster-failover");
    cluster.declare_quorum_queue(&queue, leader).await;
    assert_eq!(cluster.leader_of(&queue, leader).await, Some(leader));
    let servers = servers_on_every_node(&cluster, &queue).await;
    let client_transport = transport_on(&cluster, client_node).await;
    let client = RpcClient::connect(Arc::new(client_transport.clone()), client_config(&queue))
        .await
        .unwrap();

    let load = Load::new(CALLS, KILL_AFTER);
    let start = Instant::now();
    let running = tokio::spawn(load.clone().run(client.clone(), CALLS, IN_FLIGHT));
    tokio::time::timeout(DEADLINE, load.reached.notified())
        .await
        .expect("a third of the calls in time");
    let killed_at = Instant::now();
    cluster.kill(killed).await;
    tokio::time::timeout(DEADLINE * 2, running)
        .await
        .expect("the load to finish in time")
        .expect("the load task");

    let failures = load.failures();
    let completions = load.completions.lock().unwrap().clone();
    let recovered = recovery(start, killed_at, &completions);
    let stats = client.stats();
    let moved_to = on_node(&cluster, &client_transport);
    let mut answered = 0;
    let mut unroutable = 0;
    let mut server_reconnects = Vec::new();
    for server in servers {
        let stats = server.stop().await;
        answered += stats.answered();
        unroutable += stats.unroutable_replies.load(Ordering::Relaxed);
        server_reconnects.push(stats.reconnects.load(Ordering::Relaxed));
    }
    let what = match victim {
        Victim::ClientsNode => "the client's node",
        Victim::LeadersNode => "the quorum queue leader's node",
    };
    report(&format!(
        "SIGKILL of {what} (node {killed}) after {KILL_AFTER} of {CALLS} calls, {IN_FLIGHT} in \
         flight: {} answered right, failures {failures:?}; {:.0} calls/s before; throughput \
         back after {}; longest silence {} ms; {} retries; client reconnected {} time(s), now on \
         node {}; {} replies beyond one per call (requests served again), {} \
         dropped by the client as matching no waiting call; {unroutable} replies unroutable; \
         servers on nodes 1, 2, 3 reconnected {server_reconnects:?} times",
        CALLS - failures.values().sum::<u64>(),
        recovered.baseline_per_second,
        recovered
            .back_after
            .map_or("never".to_owned(), |back| format!(
                "{} ms",
                back.as_millis()
            )),
        recovered.longest_silence.as_millis(),
        stats.retries,
        stats.reconnects,
        moved_to.map_or("none".to_owned(), |node| node.to_string()),
        answered.saturating_sub(CALLS),
        stats.unmatched_replies,
    ));

    // Every call ended, with the right answer (checked as it came), and once.
    assert_eq!(load.completed() as u64, CALLS, "calls unfinished");
    assert!(failures.is_empty(), "calls failed: {failures:?}");
    assert_eq!(stats.pending, 0, "calls left pending");
    assert!(answered >= CALLS, "servers answered {answered} of {CALLS}");
    assert!(
        recovered.back_after.is_some(),
        "throughput never came back: {recovered:?}"
    );
    match victim {
        Victim::ClientsNode => {
            assert!(stats.reconnects >= 1, "the client did not reconnect");
            assert!(
                moved_to.is_some_and(|node| node != killed),
                "client on {moved_to:?}"
            );
        }
        Victim::LeadersNode => {
            assert_eq!(
                moved_to,
                Some(client_node),
                "the client had no reason to move"
            );
            let new_leader = cluster.leader_of(&queue, client_node).await;
            assert!(
                new_leader.is_some_and(|node| node != killed),
                "leader {new_leader:?}"
            );
        }
    }
    drop((client, client_transport));

    rejoins(&cluster, killed, &queue).await;
    cluster.delete_queue(&queue).await;
}

/// A killed node started again rejoins the cluster, and servers and clients connect to it
/// and work there again: given it first in their list, or spread by shuffled lists.
async fn rejoins(cluster: &Cluster, node: usize, queue: &str) {
    let started = Instant::now();
    cluster.start(node).await;
    let took = started.elapsed();
    // A booted node is back in the cluster only once every node has seen it connect again,
    // which lags its boot on a busy machine: wait for that, within a bound.
    for ask in NODES {
        let seen = cluster
            .running_nodes_once_all(ask, Duration::from_secs(60))
            .await;
        assert_eq!(seen, NODES, "as node {ask} sees it");
    }
    let server = fib_server(transport_on(cluster, node).await, server_config(queue));
    let client = RpcClient::connect(
        Arc::new(transport_on(cluster, node).await),
        client_config(queue),
    )
    .await
    .unwrap();
    for n in [10, 20, 30] {
        assert_eq!(client.call::<Fib>(n).await.unwrap(), fib(n));
    }
    server.stop().await;

    let mut spread = BTreeMap::new();
    for _ in 0..24 {
        let config = fibrpc_amqp::AmqpConfig {
            shuffle_addresses: true,
            ..cluster.config_from(1)
        };
        let transport = AmqpTransport::connect(config).await.unwrap();
        *spread.entry(on_node(cluster, &transport)).or_insert(0) += 1;
    }
    report(&format!(
        "node {node} started again and rejoined in {} ms; 24 shuffled connections: {spread:?}",
        took.as_millis()
    ));
    // A node left out by 24 shuffles has odds of 3 x (2/3)^24, about 1 in 5,000.
    assert_eq!(
        spread.len(),
        NODES.len(),
        "shuffled connections: {spread:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_clients_node_under_load_loses_no_call() {
    failover_run(Victim::ClientsNode).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_quorum_leaders_node_under_load_loses_no_call() {
    failover_run(Victim::LeadersNode).await;
}
