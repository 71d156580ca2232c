//! The fault suite: broker faults, crashes, hostile input and a flood of timeouts against the
//! real RabbitMQ, with figures. Some faults touch the whole broker (closing every connection,
//! restarting the node), so the scenarios run one after another in this one test. The table
//! is printed and written to `target/fault-report.md`; docs/reliability.md quotes a run.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc_conformance::protocol::RunningServer;
use fibrpc_conformance::{eventually, unique_queue, TransportFactory};
use fibrpc_domain::fib;
use fibrpc_ports::Envelope;
use fibrpc_rpc::codec::{Codec, BINCODE_CONTENT_TYPE};
use fibrpc_rpc::{Backoff, CallError, ClientConfig, RetryPolicy, RpcClient, ServerConfig};
use fibrpc_tests::AmqpFactory;
use tokio::time::Instant;

/// A bound on the calls of one scenario, whatever happens.
const MAX_CALLS: u64 = 200_000;

/// What one fault did to a steady stream of calls.
#[derive(Default)]
struct Row {
    fault: &'static str,
    action: &'static str,
    attempted: u64,
    succeeded: u64,
    failed: BTreeMap<String, u64>,
    /// Calls that got neither an answer nor a typed error before their deadline.
    lost: u64,
    retried: u64,
    /// The longest any call waited: how long the fault stalled callers.
    longest_call: Duration,
}

async fn rabbitmqctl(args: &'static [&'static str]) {
    let output =
        tokio::task::spawn_blocking(move || Command::new("rabbitmqctl").args(args).output())
            .await
            .unwrap()
            .expect("cannot run rabbitmqctl");
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn quick_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    }
}

fn client_config(queue: &str, retry: bool) -> ClientConfig {
    ClientConfig {
        queue: queue.to_owned(),
        timeout: Duration::from_secs(20),
        retry: if retry {
            RetryPolicy::Idempotent {
                backoff: quick_backoff(),
            }
        } else {
            RetryPolicy::Never
        },
        reconnect: quick_backoff(),
        ..ClientConfig::default()
    }
}

fn server_config(queue: &str) -> ServerConfig {
    ServerConfig {
        queue: queue.to_owned(),
        reconnect: quick_backoff(),
        ..ServerConfig::default()
    }
}

/// Keeps 8 calls in flight from before `inject` runs until a second after it is over, so the
/// fault always meets calls in flight.
async fn under_load(
    fault: &'static str,
    action: &'static str,
    client: &RpcClient,
    inject: impl std::future::Future<Output = ()>,
) -> Row {
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let started = Arc::new(tokio::sync::Notify::new());
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let next = Arc::new(AtomicU64::new(0));
    let retries_before = client.stats().retries;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let (client, outcomes, started, stop, next) = (
            client.clone(),
            outcomes.clone(),
            started.clone(),
            stop.clone(),
            next.clone(),
        );
        workers.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= MAX_CALLS {
                    break;
                }
                if i == 100 {
                    started.notify_one();
                }
                let n = 100 + i % 400;
                let began = Instant::now();
                let outcome = client.call(n).await;
                if let Ok(value) = &outcome {
                    assert_eq!(*value, fib(n), "wrong answer for fib({n})");
                }
                outcomes
                    .lock()
                    .unwrap()
                    .push((began.elapsed(), outcome.map(|_| ())));
            }
        });
    }
    started.notified().await;
    inject.await;
    tokio::time::sleep(Duration::from_secs(1)).await; // load after the fault, to see recovery
    stop.store(true, Ordering::Relaxed);
    while let Some(joined) = workers.join_next().await {
        joined.unwrap();
    }
    let mut row = Row {
        fault,
        action,
        retried: client.stats().retries - retries_before,
        ..Row::default()
    };
    for (took, outcome) in std::mem::take(&mut *outcomes.lock().unwrap()) {
        row.attempted += 1;
        row.longest_call = row.longest_call.max(took);
        match outcome {
            Ok(()) => row.succeeded += 1,
            Err(CallError::Timeout(_)) => row.lost += 1,
            Err(error) => {
                *row.failed
                    .entry(fibrpc_tests::failures::kind(&error))
                    .or_default() += 1
            }
        }
    }
    row
}

fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| fault | what was done | calls | succeeded | failed (error) | lost | retried | longest call |\n|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let failed = if row.failed.is_empty() {
            "0".to_owned()
        } else {
            row.failed
                .iter()
                .map(|(kind, count)| format!("{count} ({kind})"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} ms |",
            row.fault,
            row.action,
            row.attempted,
            row.succeeded,
            failed,
            row.lost,
            row.retried,
            row.longest_call.as_millis()
        );
    }
    out
}

/// Every kind of hostile request, sent raw: each gets its typed error reply where a reply is
/// possible, is acknowledged (the queue ends empty), and the server keeps serving.
async fn hostile_input(factory: &AmqpFactory, queue: &str) -> String {
    let connection = factory.connect().await.unwrap();
    let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
    let reply_to = Some(inbox.address().to_owned());
    let raw = |content_type: Option<&str>, body: Vec<u8>| Envelope {
        correlation_id: Some(uuid_like()),
        reply_to: reply_to.clone(),
        content_type: content_type.map(str::to_owned),
        body,
        deadline: None,
    };
    let text = Some("text/plain");
    let bincode = Some(BINCODE_CONTENT_TYPE);
    let good = Codec::Bincode.encode_request(fibrpc_domain::FibRequest { n: 1 << 40 });
    let answered: Vec<(&str, Envelope, &str)> = vec![
        ("empty body", raw(text, vec![]), "invalid-request"),
        (
            "non-numeric text",
            raw(text, b"thirty".to_vec()),
            "invalid-request",
        ),
        (
            "negative number",
            raw(None, b"-30".to_vec()),
            "invalid-request",
        ),
        (
            "5,000 digits",
            raw(text, vec![b'9'; 5000]),
            "invalid-request",
        ),
        (
            "n above the bound",
            raw(text, b"1000001".to_vec()),
            "above-bound",
        ),
        (
            "invalid UTF-8",
            raw(text, vec![0xc3, 0x28, b'1']),
            "invalid-request",
        ),
        (
            "truncated bincode",
            raw(bincode, good[..good.len() - 1].to_vec()),
            "invalid-request",
        ),
        (
            "garbage bincode",
            raw(bincode, vec![0xfe; 40]),
            "invalid-request",
        ),
        (
            "unknown content type",
            raw(Some("application/xml"), b"<n>3</n>".to_vec()),
            "unsupported-content-type",
        ),
        (
            "16 MiB body",
            raw(text, vec![b'1'; 16 << 20]),
            "body-too-large",
        ),
        (
            "missing correlation_id",
            Envelope {
                correlation_id: None,
                ..raw(text, b"10".to_vec())
            },
            "answered",
        ),
    ];
    let mut report = String::from("| hostile input | reply |\n|---|---|\n");
    for (what, request, expected) in answered {
        connection
            .requests
            .send_request(queue, request)
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(20), inbox.next_reply())
            .await
            .unwrap_or_else(|_| panic!("{what}: no reply"))
            .unwrap();
        let codec = Codec::for_content_type(reply.content_type.as_deref()).unwrap();
        let outcome = codec.decode_reply(&reply.body).unwrap();
        let got = match &outcome {
            Ok(_) => "answered".to_owned(),
            Err(error) => error.code().to_owned(),
        };
        assert_eq!(got, expected, "{what}: {outcome:?}");
        let _ = writeln!(
            report,
            "| {what} | {} |",
            match outcome {
                Ok(response) => format!("fib = {}", response.value),
                Err(error) => format!("error reply: {error}"),
            }
        );
    }
    // No reply possible: acknowledged and logged, never requeued.
    let no_reply_to = Envelope {
        reply_to: None,
        ..raw(text, b"10".to_vec())
    };
    connection
        .requests
        .send_request(queue, no_reply_to)
        .await
        .unwrap();
    let gone_reply_to = Envelope {
        reply_to: Some("no-such-reply-queue".to_owned()),
        ..raw(text, b"10".to_vec())
    };
    connection
        .requests
        .send_request(queue, gone_reply_to)
        .await
        .unwrap();
    let admin = factory.admin().clone();
    eventually(
        Duration::from_secs(20),
        "hostile requests are all acknowledged",
        || {
            let admin = admin.clone();
            async move { admin.queue_depth(queue).await.is_ok_and(|depth| depth == 0) }
        },
    )
    .await;
    report.push_str("| missing reply_to | none possible: acknowledged, logged |\n");
    report.push_str("| reply_to naming no queue | reply unroutable: acknowledged, logged |\n");
    report
}

fn uuid_like() -> String {
    format!(
        "{:032x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// 100,000 calls to a queue nobody serves: each times out; afterwards nothing is pending and
/// resident memory has not grown with the count.
async fn timeout_flood(factory: &AmqpFactory) -> String {
    const FLOOD: u64 = 100_000;
    const BATCH: u64 = 10_000;
    let queue = unique_queue("flood");
    factory.declare_queue(&queue).await.unwrap();
    let config = ClientConfig {
        timeout: Duration::from_millis(100),
        max_in_flight: 2000,
        ..client_config(&queue, false)
    };
    let client = RpcClient::connect(factory.connect().await.unwrap().requests, config)
        .await
        .unwrap();
    let mut resident = Vec::new();
    for batch in 0..FLOOD / BATCH {
        let calls = (0..BATCH).map(|i| {
            let client = client.clone();
            async move { client.call(batch * BATCH + i).await }
        });
        let outcomes = futures_util::future::join_all(calls).await;
        assert!(outcomes
            .iter()
            .all(|outcome| matches!(outcome, Err(CallError::Timeout(_)))));
        assert_eq!(client.stats().pending, 0);
        resident.push(resident_kib());
    }
    factory.delete_queue(&queue).await;
    // The first batches fill the allocator's pools and lapin's buffers; what matters is
    // whether memory keeps growing with the count after that.
    const WARM_UP: usize = 3;
    let (warm, last) = (resident[WARM_UP - 1], *resident.last().unwrap());
    let growth = last.saturating_sub(warm);
    let measured_calls = FLOOD - WARM_UP as u64 * BATCH;
    let per_call = growth * 1024 / measured_calls;
    eprintln!("resident KiB after each batch of {BATCH}: {resident:?}");
    assert!(
        growth < 16 * 1024,
        "resident memory grew by {growth} KiB over {measured_calls} timed-out calls: {resident:?}"
    );
    format!(
        "{FLOOD} calls to a queue with no server, 2,000 in flight, 100 ms deadline: every one ended in `Timeout` and the pending table was empty after each batch of {BATCH}. Resident memory: {} MiB after {} calls, {} MiB after {FLOOD} ({growth} KiB more, {per_call} bytes per call).\n",
        warm / 1024,
        WARM_UP as u64 * BATCH,
        last / 1024,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_suite() {
    let Some(factory) = AmqpFactory::new_or_skip().await else {
        return;
    };
    if Command::new("rabbitmqctl").arg("version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but no rabbitmqctl"
        );
        eprintln!("skipping: no rabbitmqctl to inject faults with");
        return;
    }
    let queue = unique_queue("faults");
    let first =
        RunningServer::start(&factory.connect().await.unwrap(), server_config(&queue)).await;
    let retrying = RpcClient::connect(
        factory.connect().await.unwrap().requests,
        client_config(&queue, true),
    )
    .await
    .unwrap();
    let plain = RpcClient::connect(
        factory.connect().await.unwrap().requests,
        client_config(&queue, false),
    )
    .await
    .unwrap();
    assert_eq!(
        retrying.call(30).await.unwrap(),
        fib(30),
        "the server is not serving"
    );

    let mut rows = Vec::new();
    let close_all = || rabbitmqctl(&["close_all_connections", "fibrpc fault suite"]);
    rows.push(
        under_load(
            "connections closed",
            "`rabbitmqctl close_all_connections`; client with retry",
            &retrying,
            close_all(),
        )
        .await,
    );
    rows.push(
        under_load(
            "connections closed",
            "the same; client without retry",
            &plain,
            close_all(),
        )
        .await,
    );
    rows.push(
        under_load(
            "broker restart",
            "`rabbitmqctl stop_app`, 2 s down, `start_app`; client with retry",
            &retrying,
            async {
                rabbitmqctl(&["stop_app"]).await;
                tokio::time::sleep(Duration::from_secs(2)).await; // the outage being simulated
                rabbitmqctl(&["start_app"]).await;
            },
        )
        .await,
    );
    let second =
        RunningServer::start(&factory.connect().await.unwrap(), server_config(&queue)).await;
    rows.push(
        under_load(
            "server crash",
            "one of two servers killed mid-load (its task dropped)",
            &plain,
            first.kill(),
        )
        .await,
    );

    let mut report = table(&rows);
    report.push('\n');
    report.push_str(&hostile_input(&factory, &queue).await);
    assert_eq!(
        retrying.call(31).await.unwrap(),
        fib(31),
        "the server stopped serving"
    );
    report.push('\n');
    report.push_str(&timeout_flood(&factory).await);
    println!("{report}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fault-report.md");
    let _ = std::fs::write(&path, &report);

    for row in &rows {
        assert_eq!(row.lost, 0, "{}: calls lost", row.fault);
        let unexpected: u64 = row
            .failed
            .iter()
            // Typed and prompt: a lost connection, or a request queue a restart removed and
            // no server has declared again yet.
            .filter(|(kind, _)| !matches!(kind.as_str(), "Disconnected" | "NoSuchQueue"))
            .map(|(_, count)| count)
            .sum();
        assert_eq!(
            unexpected, 0,
            "{}: untyped or unexpected failures: {:?}",
            row.fault, row.failed
        );
    }
    assert_eq!(
        rows[0].succeeded, rows[0].attempted,
        "the retrying client lost calls to a connection loss"
    );
    assert!(
        rows[1].failed.contains_key("Disconnected"),
        "no call was in flight when the connection closed"
    );
    assert_eq!(
        rows[2].succeeded, rows[2].attempted,
        "the retrying client lost calls to a broker restart"
    );
    assert_eq!(
        rows[3].succeeded, rows[3].attempted,
        "calls were lost with a crashed server"
    );
    assert_eq!(retrying.stats().pending, 0);
    second.stop().await;
    factory.delete_queue(&queue).await;
}
