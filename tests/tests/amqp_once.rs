//! A procedure that must not run twice, called while the client's and the server's
//! connections are cut again and again: with the resumable reply queue, the same correlation
//! id on a resend and the server's memory of recent calls, every call runs exactly once and
//! is answered right. Against the real RabbitMQ; only this test's own connections are cut.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc_amqp::{AmqpConfig, AmqpTransport, ReplyQueueMode};
use fibrpc_ports::{Connection, QueueAdmin, TransportError};
use fibrpc_rpc::{Backoff, ClientConfig, Procedure, RetryPolicy, RpcClient, ServerConfig, Service};
use fibrpc_test_support::{
    eventually, rabbitmq, skip_or_fail, unique, unique_queue, within, RunningServer,
};
use futures_util::stream::{self, StreamExt};
use tokio::sync::watch;

/// Counts, per call number, how many times it ran: running one twice is the fault.
struct Tally;

#[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("never")]
struct Never;

impl Procedure for Tally {
    const NAME: &'static str = "once.tally";
    type Request = u64;
    type Response = u64;
    type Error = Never;
}

/// Calls made at least, and at most (a bound, far above what the cuts take).
const MIN_CALLS: u64 = 2_000;
const MAX_CALLS: u64 = 200_000;
const IN_FLIGHT: usize = 32;
/// Cuts, the client's and the server's connections in turn, each after this many answers.
const CUTS: usize = 6;
const CALLS_BETWEEN_CUTS: u64 = 100;

fn backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
    }
}

fn config(name: &str) -> AmqpConfig {
    AmqpConfig {
        url: std::env::var("AMQP_URL").unwrap_or_else(|_| AmqpConfig::default().url),
        reply_queue: ReplyQueueMode::Resumable,
        connection_name: Some(name.to_owned()),
        ..AmqpConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_must_not_run_twice_runs_once_while_connections_are_cut() {
    let client_name = unique("once-client");
    let server_name = unique("once-server");
    let admin = match AmqpTransport::connect(config(&unique("once-admin"))).await {
        Ok(admin) => admin,
        Err(error) => {
            return skip_or_fail(
                "RabbitMQ",
                error,
                "start it with `rabbitmq-server -detached`",
            )
        }
    };
    if !rabbitmq::have_rabbitmqctl() {
        return skip_or_fail("rabbitmqctl", "cannot run it", "it cuts the connections");
    }
    let queue = unique_queue("once");
    admin.declare_request_queue(&queue).await.unwrap();

    let runs: Arc<Mutex<HashMap<u64, u32>>> = Arc::default();
    let service = Service::new(runs.clone()).register(Tally, |runs, n| async move {
        *runs.lock().unwrap().entry(n).or_default() += 1;
        // Give a cut the chance to fall between the run and its reply.
        tokio::task::yield_now().await;
        Ok(n * 3)
    });
    let server_connection =
        Connection::new(AmqpTransport::connect(config(&server_name)).await.unwrap());
    let server_config = ServerConfig {
        queue: queue.clone(),
        reconnect: backoff(),
        ..ServerConfig::default()
    };
    let server = RunningServer::start(server_connection.replies, server_config, service);
    server.consuming().await;

    let client_transport = Arc::new(AmqpTransport::connect(config(&client_name)).await.unwrap());
    let client_config = ClientConfig {
        queue: queue.clone(),
        timeout: Duration::from_secs(30),
        retry: RetryPolicy::Idempotent { backoff: backoff() },
        reconnect: backoff(),
        ..ClientConfig::default()
    };
    let client = RpcClient::connect(client_transport, client_config)
        .await
        .unwrap();
    let reply_queue = client.reply_address().unwrap();
    assert!(reply_queue.starts_with("fibrpc.reply."), "{reply_queue}");

    // Calls go on until the cuts are done (and at least MIN_CALLS were made); each cut
    // waits for calls answered since the one before, so that it falls amid traffic.
    let (answered, mut progress) = watch::channel(0u64);
    let cutting = Arc::new(AtomicBool::new(true));
    let cutter = tokio::spawn({
        let (client_name, server_name) = (client_name.clone(), server_name.clone());
        let cutting = cutting.clone();
        async move {
            let mut cuts = Vec::new();
            for cut in 0..CUTS {
                let since = *progress.borrow_and_update();
                let _ = progress
                    .wait_for(|&done| done >= since + CALLS_BETWEEN_CUTS)
                    .await;
                let name = if cut % 2 == 0 {
                    &client_name
                } else {
                    &server_name
                };
                let closed = rabbitmq::sever_connections_named(name).await.unwrap();
                cuts.push((name.clone(), closed));
            }
            cutting.store(false, Ordering::Relaxed);
            cuts
        }
    });

    let outcomes: Vec<(u64, Result<u64, _>)> = within(
        Duration::from_secs(180),
        "every call answered",
        stream::iter(0..MAX_CALLS)
            .take_while(|&n| std::future::ready(n < MIN_CALLS || cutting.load(Ordering::Relaxed)))
            .map(|n| {
                let client = client.clone();
                let answered = answered.clone();
                async move {
                    let outcome = client.call::<Tally>(n).await;
                    answered.send_modify(|done| *done += 1);
                    (n, outcome)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect(),
    )
    .await;
    drop(answered);
    let cuts = within(Duration::from_secs(30), "the cuts", cutter)
        .await
        .unwrap();
    let calls = outcomes.len() as u64;
    assert!(calls >= MIN_CALLS);

    for (n, outcome) in &outcomes {
        assert_eq!(
            outcome.as_ref().ok(),
            Some(&(n * 3)),
            "call {n}: {outcome:?}"
        );
    }
    // Every cut hit a connection: a cut that closed nothing would pass for nothing.
    assert_eq!(cuts.len(), CUTS);
    for (name, closed) in &cuts {
        assert!(*closed > 0, "no connection named {name} to cut: {cuts:?}");
    }
    {
        let runs = runs.lock().unwrap();
        let twice: Vec<_> = runs.iter().filter(|(_, &times)| times != 1).collect();
        assert!(twice.is_empty(), "ran other than once: {twice:?}");
        assert_eq!(runs.len() as u64, calls);
    }
    let stats = client.stats();
    println!("{calls} calls, {} cuts, client: {stats:?}", cuts.len());
    assert_eq!(stats.pending, 0);
    assert!(
        stats.resumed >= 1,
        "the client never resumed its reply queue: {stats:?}"
    );
    assert_eq!(stats.reconnects, 0, "a reply queue was lost: {stats:?}");
    let server_stats = server.stop().await;
    assert!(server_stats.reconnects.load(Ordering::Relaxed) >= 1);

    // Closing the client deletes its reply queue.
    assert!(admin.queue_depth(&reply_queue).await.is_ok());
    drop(client);
    eventually(
        Duration::from_secs(10),
        "the reply queue deleted",
        || async {
            matches!(
                admin.queue_depth(&reply_queue).await,
                Err(TransportError::NoSuchQueue { .. })
            )
        },
    )
    .await;
    admin.delete_queue(&queue).await.unwrap();
}
