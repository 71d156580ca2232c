//! A long run over RabbitMQ: fib calls, 64 in flight, to a `fibrpc serve` process, while the
//! client's and the server's connections are cut in turn every few seconds. Every call is
//! answered with the right value, the resident memory of both processes stays within a bound
//! after warm-up, and nothing is left behind: no pending call, no request ready or
//! unacknowledged, no reply queue, no consumer once the server stopped.
//!
//! Its size comes from the environment (docs/reliability.md, "A long run"):
//! `FIBRPC_SOAK_CALLS` (100,000 by default, CI's size), `FIBRPC_SOAK_CUT_EVERY_MS` (1,000: the
//! pause between cuts, each of which takes `rabbitmqctl` a second or more) and
//! `FIBRPC_SOAK_LIMIT_SECS` (the watchdog; by default 120 s plus 1 s per 400 calls).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fibrpc_app::{connect_with, ConnectOptions};
use fibrpc_fib::Fib;
use fibrpc_rpc::{Backoff, ClientConfig, RetryPolicy, RpcClient};
use fibrpc_test_support::rabbitmq::{self, QueueState};
use fibrpc_test_support::{eventually, own_resident_kib, resident_kib, skip_or_fail, unique};
use support::*;

const URL: &str = "amqp://127.0.0.1:5672/%2f";
const IN_FLIGHT: usize = 64;
/// The calls ask fib(0) to fib(499): values up to 347 bits, each checked.
const DISTINCT_N: u64 = 500;
/// Samples of resident memory over the run.
const SAMPLES: u64 = 50;
/// Memory taken before this share of the calls is warm-up (pools, buffers, the tables).
const WARM_UP_PERCENT: u64 = 20;
/// The bound of the steady resident size after warm-up, for each process: 1.5 times the size
/// at warm-up plus this much.
const RSS_SLACK_KIB: u64 = 8 * 1024;
/// The bound of any one sample after warm-up: this many times the size at warm-up.
const PEAK_FACTOR: u64 = 3;
/// How long the broker may take to show what is left once the calls are over.
const SETTLE: Duration = Duration::from_secs(30);

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value:?} is not a number")),
        Err(_) => default,
    }
}

/// Resident memory of both processes after `calls` calls, in KiB.
#[derive(Debug, Clone, Copy)]
struct Sample {
    calls: u64,
    client: u64,
    server: u64,
}

/// What the calls came to.
#[derive(Default)]
struct Tally {
    answered: AtomicU64,
    wrong: AtomicU64,
    failed: Mutex<BTreeMap<String, u64>>,
    samples: Mutex<Vec<Sample>>,
}

/// What the cuts did: how many of each side's connections were closed, and every reply
/// queue the client named before a cut (each must be gone at the end).
#[derive(Default)]
struct Cuts {
    client: u64,
    server: u64,
    reply_queues: BTreeSet<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_run_with_cut_connections_answers_every_call_and_leaves_nothing() {
    if !rabbitmq_available() {
        return;
    }
    if !rabbitmq::have_rabbitmqctl() {
        skip_or_fail(
            "rabbitmqctl",
            "cannot run it",
            "the soak cuts connections with it",
        );
        return;
    }
    let calls = env_number("FIBRPC_SOAK_CALLS", 100_000);
    let cut_every = Duration::from_millis(env_number("FIBRPC_SOAK_CUT_EVERY_MS", 1_000));
    let limit = Duration::from_secs(env_number("FIBRPC_SOAK_LIMIT_SECS", 120 + calls / 400));
    assert!(
        calls >= SAMPLES,
        "FIBRPC_SOAK_CALLS={calls}: too few to sample"
    );

    let queue = unique_queue("soak");
    let mut server = serve(&queue, &["--prefetch", "64"]);
    let server_pid = server.id();
    // The exact name, quotes included: "fibrpc 12" must not also cut "fibrpc 123".
    let server_name = format!("\"fibrpc {server_pid}\"");
    let client_name = unique("fibrpc-soak");
    let client = connect_client(&queue, &client_name).await;
    assert_eq!(
        client.call::<Fib>(30).await.unwrap(),
        fibrpc_domain::fib(30),
        "the server is not serving"
    );

    let started = Instant::now();
    let tally = Arc::new(Tally::default());
    let done = Arc::new(AtomicBool::new(false));
    let cutter = tokio::spawn(cut_in_turn(
        client.clone(),
        [client_name.clone(), server_name],
        cut_every,
        done.clone(),
    ));
    let calling = run_calls(&client, calls, server_pid, &tally);
    tokio::time::timeout(limit, calling)
        .await
        .unwrap_or_else(|_| panic!("the soak did not finish within {limit:?}"));
    done.store(true, Ordering::Relaxed);
    let mut cuts = cutter.await.expect("the cutter failed");
    // A last cut may have ended just now: the client reopens its reply queue, and meanwhile
    // its stats read no reconnects (they live with the address).
    eventually(SETTLE, "the client's reply queue open", || async {
        client.reply_address().is_some()
    })
    .await;
    cuts.reply_queues.extend(client.reply_address());
    let elapsed = started.elapsed();
    let stats = client.stats();
    let mut samples = tally.samples.lock().unwrap().clone();
    samples.sort_by_key(|sample| sample.calls);
    let failed = tally.failed.lock().unwrap().clone();
    let answered = tally.answered.load(Ordering::Relaxed);
    let wrong = tally.wrong.load(Ordering::Relaxed);
    eprintln!(
        "soak: {calls} calls in {elapsed:.1?} ({:.0}/s), {IN_FLIGHT} in flight; {} client and \
         {} server connections cut; {} retries, {} reply queues resumed, {} reopened, {} unmatched \
         replies",
        calls as f64 / elapsed.as_secs_f64(),
        cuts.client,
        cuts.server,
        stats.retries,
        stats.resumed,
        stats.reconnects,
        stats.unmatched_replies,
    );
    let bounds = memory_bounds(&samples, calls);
    let series: Vec<String> = samples
        .iter()
        .map(|sample| format!("{}:{}/{}", sample.calls, sample.client, sample.server))
        .collect();
    eprintln!("soak: calls:client/server KiB: {}", series.join(" "));

    assert_eq!(answered, calls, "calls not answered: {failed:?}");
    assert_eq!(wrong, 0, "calls answered with a wrong value");
    assert!(failed.is_empty(), "calls failed: {failed:?}");
    assert!(
        cuts.client > 0 && cuts.server > 0,
        "the fault was not injected: {} client and {} server cuts",
        cuts.client,
        cuts.server
    );
    assert!(stats.retries > 0, "no call was retried: no cut met a call");
    // The default reply queue outlives a cut (resumed); an exclusive one is reopened.
    assert!(
        stats.resumed + stats.reconnects > 0,
        "the client never lost its reply queue: no cut met it"
    );
    assert_eq!(stats.pending, 0, "calls left pending");
    for bound in bounds {
        bound.check();
    }

    // Nothing left: the requests all settled while the server still consumes.
    let served = QueueState {
        consumers: 1,
        ..QueueState::IDLE
    };
    wait_for_queue(&queue, Some(served), "requests settled").await;
    drop(client);
    eventually(SETTLE, "the client's connection closed", || async {
        rabbitmq::connections_named(&client_name).await.unwrap() == 0
    })
    .await;
    for reply_queue in &cuts.reply_queues {
        wait_for_queue(reply_queue, None, "the reply queue gone").await;
    }
    server.signal("TERM");
    let replies = replies_of(&mut server);
    assert!(server.wait().success(), "the server failed");
    eprintln!("soak: the server sent {replies} replies (redeliveries answered again)");
    assert!(
        replies > calls,
        "the server sent {replies} replies for {calls} calls and the first"
    );
    wait_for_queue(&queue, Some(QueueState::IDLE), "no consumer left").await;
    let admin = fibrpc_app::connect(URL).await.unwrap().admin;
    admin.delete_queue(&queue).await.unwrap();
}

async fn connect_client(queue: &str, name: &str) -> RpcClient {
    let options = ConnectOptions {
        connection_name: Some(name.to_owned()),
        ..ConnectOptions::default()
    };
    let connection = connect_with(URL, &options)
        .await
        .expect("the soak's client cannot connect");
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };
    let config = ClientConfig {
        queue: queue.to_owned(),
        timeout: Duration::from_secs(30),
        retry: RetryPolicy::Idempotent { backoff },
        reconnect: backoff,
        max_in_flight: IN_FLIGHT,
        ..ClientConfig::default()
    };
    RpcClient::connect(connection.requests, config)
        .await
        .expect("the soak's client cannot open its reply queue")
}

/// `calls` calls from `IN_FLIGHT` tasks, each answer checked; samples resident memory at
/// every `calls / SAMPLES` answers.
async fn run_calls(client: &RpcClient, calls: u64, server_pid: u32, tally: &Arc<Tally>) {
    let expected: Arc<Vec<_>> = Arc::new((0..DISTINCT_N).map(fibrpc_domain::fib).collect());
    let next = Arc::new(AtomicU64::new(0));
    let every = calls / SAMPLES;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..IN_FLIGHT {
        let (client, expected, next, tally) = (
            client.clone(),
            expected.clone(),
            next.clone(),
            tally.clone(),
        );
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    break;
                }
                let n = i % DISTINCT_N;
                match client.call::<Fib>(n).await {
                    Ok(value) if value == expected[n as usize] => {
                        let answered = tally.answered.fetch_add(1, Ordering::Relaxed) + 1;
                        if answered.is_multiple_of(every) {
                            let sample = Sample {
                                calls: answered,
                                client: own_resident_kib(),
                                server: resident_kib(server_pid),
                            };
                            tally.samples.lock().unwrap().push(sample);
                        }
                    }
                    Ok(_) => {
                        tally.wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => {
                        let kind = kind_of(&error);
                        *tally.failed.lock().unwrap().entry(kind).or_default() += 1;
                    }
                }
            }
        });
    }
    while let Some(joined) = workers.join_next().await {
        joined.expect("a calling task panicked");
    }
}

/// A failure's kind, for the summary (its first words).
fn kind_of<E: std::fmt::Display>(error: &E) -> String {
    error.to_string().chars().take(60).collect()
}

/// Cuts the client's and the server's connections in turn, one every `period`, until `done`.
/// The cuts are the fault under test: their timing is the test's parameter, not a wait.
async fn cut_in_turn(
    client: RpcClient,
    [client_name, server_name]: [String; 2],
    period: Duration,
    done: Arc<AtomicBool>,
) -> Cuts {
    let mut cuts = Cuts::default();
    let mut turn = 0u64;
    loop {
        tokio::time::sleep(period).await;
        if done.load(Ordering::Relaxed) {
            return cuts;
        }
        let cut_client = turn.is_multiple_of(2);
        turn += 1;
        if cut_client {
            if let Some(address) = client.reply_address() {
                cuts.reply_queues.insert(address);
            }
        }
        let name = if cut_client {
            &client_name
        } else {
            &server_name
        };
        let closed = rabbitmq::sever_connections_named(name)
            .await
            .unwrap_or_else(|error| panic!("cannot cut {name}: {error}"));
        // A cut counts only if it met the calls: rabbitmqctl takes a second or more.
        if done.load(Ordering::Relaxed) {
            return cuts;
        }
        assert!(closed <= 1, "{closed} connections matched {name}");
        let side = if cut_client {
            &mut cuts.client
        } else {
            &mut cuts.server
        };
        *side += closed as u64;
    }
}

/// Waits until the broker shows `expected` of `queue` (None: no such queue); fails the test
/// with what it showed after [`SETTLE`]. Polled: no event announces a count.
async fn wait_for_queue(queue: &str, expected: Option<QueueState>, what: &str) {
    let give_up = Instant::now() + SETTLE;
    loop {
        let state = rabbitmq::queue_state(queue)
            .await
            .unwrap_or_else(|error| panic!("cannot read {queue}: {error}"));
        if state == expected {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "{what}: {queue} shows {state:?}, not {expected:?}, after {SETTLE:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The memory bounds of one process, against its resident size at warm-up: its steady size
/// (the median and the last sample after warm-up) within 1.5 times that plus
/// [`RSS_SLACK_KIB`], and any one sample within [`PEAK_FACTOR`] times that. Long runs showed
/// the client's size rise for a few samples now and then (10 to 30 MiB) and fall back.
struct Bound {
    process: &'static str,
    warm: u64,
    median: u64,
    highest: u64,
    last: u64,
}

impl Bound {
    fn steady_limit(&self) -> u64 {
        self.warm * 3 / 2 + RSS_SLACK_KIB
    }

    fn peak_limit(&self) -> u64 {
        self.warm * PEAK_FACTOR
    }

    fn check(&self) {
        let process = self.process;
        let (steady, peak) = (self.steady_limit(), self.peak_limit());
        assert!(
            self.median <= steady && self.last <= steady,
            "the {process}'s resident memory grew: median {} KiB and last {} KiB after warm-up \
             at {} KiB (bound {steady} KiB)",
            self.median,
            self.last,
            self.warm
        );
        assert!(
            self.highest <= peak,
            "the {process}'s resident memory reached {} KiB after warm-up at {} KiB (bound \
             {peak} KiB)",
            self.highest,
            self.warm
        );
    }
}

/// Each process's bounds, from the samples.
fn memory_bounds(samples: &[Sample], calls: u64) -> [Bound; 2] {
    let warm_up = calls * WARM_UP_PERCENT / 100;
    let (before, after): (Vec<Sample>, Vec<Sample>) =
        samples.iter().partition(|sample| sample.calls <= warm_up);
    let warm = before
        .last()
        .copied()
        .expect("no sample before warm-up ended");
    assert!(!after.is_empty(), "no sample after warm-up: {samples:?}");
    let bound = |process, read: fn(&Sample) -> u64| {
        let mut sizes: Vec<u64> = after.iter().map(read).collect();
        let last = *sizes.last().unwrap();
        sizes.sort_unstable();
        Bound {
            process,
            warm: read(&warm),
            median: sizes[sizes.len() / 2],
            highest: *sizes.last().unwrap(),
            last,
        }
    };
    let bounds = [
        bound("client", |sample| sample.client),
        bound("server", |sample| sample.server),
    ];
    for bound in &bounds {
        eprintln!(
            "soak: {} resident memory: {} KiB after {warm_up} calls (warm-up); after it median \
             {} KiB, last {} KiB (bound {} KiB), highest {} KiB (bound {} KiB)",
            bound.process,
            bound.warm,
            bound.median,
            bound.last,
            bound.steady_limit(),
            bound.highest,
            bound.peak_limit()
        );
    }
    bounds
}
