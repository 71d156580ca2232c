//! The server outcomes that only a broker brings about, counted as docs/observability.md
//! says: `no_reply_to` (a request with no reply address) and `disconnected` (a reply that
//! could not go out because the connection was lost; the request is delivered again). Over
//! the local RabbitMQ; only this test's own connections are cut.
//!
//! Not `expired`: RabbitMQ drops a request still queued at its deadline, and the adapter
//! rebuilds the deadline from `expiration` when the server takes a request from its prefetch,
//! so a request that waited there past its caller's deadline is run all the same.

use std::sync::Arc;
use std::time::Duration;

use fibrpc_conformance::{unique_queue, TransportFactory};
use fibrpc_domain::Fibonacci;
use fibrpc_fib::Fib;
use fibrpc_ports::{Envelope, QueueAdmin, TransportError};
use fibrpc_rpc::metrics::{render, Registry};
use fibrpc_rpc::Service;
use fibrpc_rpc::{Backoff, CallError, ClientConfig, Metrics, RpcClient, ServerConfig};
use fibrpc_test_support::{eventually, rabbitmq, skip_or_fail, within, RunningServer};
use fibrpc_tests::{AmqpFactory, Held};
use tokio::sync::{mpsc, Semaphore};

const LIMIT: Duration = Duration::from_secs(20);

/// What the handler of `Held` waits on: a permit the test hands out.
struct Permits {
    waiting: mpsc::UnboundedSender<()>,
    permits: Arc<Semaphore>,
}

/// The count of the server's requests that ended with `outcome`, whatever their procedure.
fn server_outcome(registry: &Registry, outcome: &str) -> f64 {
    let label = format!("outcome=\"{outcome}\"}}");
    render(registry)
        .lines()
        .filter(|line| line.starts_with("fibrpc_server_requests_total{") && line.contains(&label))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The tutorial's request for fib(10), with no reply address.
fn unanswerable_request() -> Envelope {
    Envelope {
        correlation_id: Some(fibrpc_test_support::unique("outcome")),
        content_type: Some("text/plain".to_owned()),
        body: b"10".to_vec(),
        ..Envelope::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outcomes_only_a_broker_brings_about_are_counted() {
    let Some(factory) = AmqpFactory::new_or_skip().await else {
        return;
    };
    if !rabbitmq::have_rabbitmqctl() {
        return skip_or_fail("rabbitmqctl", "cannot run it", "it cuts the connections");
    }
    let queue = unique_queue("outcomes");
    factory.admin().declare_request_queue(&queue).await.unwrap();
    let mut registry = Registry::default();
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(500),
    };
    let config = ServerConfig {
        queue: queue.clone(),
        // One at a time: the request delivered again comes behind the held one.
        concurrency: 1,
        reconnect: backoff,
        metrics: Some(Metrics::register(&mut registry)),
        ..ServerConfig::default()
    };
    let (waiting, mut held) = mpsc::unbounded_channel();
    let permits = Arc::new(Semaphore::new(0));
    let holding = Service::new(Permits {
        waiting,
        permits: permits.clone(),
    })
    .register(Held, |state, n| async move {
        let _ = state.waiting.send(());
        state.permits.acquire().await.unwrap().forget();
        Ok(n)
    });
    let service = Fib::service(Fibonacci::default()).merge(holding);
    let server = RunningServer::start(factory.connect().await.unwrap().replies, config, service);
    server.consuming().await;
    let sender = factory.connect().await.unwrap();
    let client_config = ClientConfig {
        queue: queue.clone(),
        timeout: Duration::from_secs(30),
        ..ClientConfig::default()
    };
    let client = RpcClient::connect(sender.requests.clone(), client_config)
        .await
        .unwrap();
    let counted = |outcome: &'static str, count: f64| {
        let registry = &registry;
        eventually(LIMIT, outcome, move || async move {
            server_outcome(registry, outcome) == count
        })
    };

    // No reply address: acknowledged unanswered.
    sender
        .requests
        .send_request(&queue, unanswerable_request())
        .await
        .unwrap();
    counted("no_reply_to", 1.0).await;

    // The connection lost while a call is held: its reply cannot go out.
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call::<Held>(2).await }
    });
    within(LIMIT, "the held call", held.recv()).await;
    assert!(factory.sever_connections().await, "nothing was cut");
    let lost = within(LIMIT, "the call to fail", call).await.unwrap();
    assert!(
        matches!(
            lost,
            Err(CallError::Transport(TransportError::Disconnected { .. }))
        ),
        "{lost:?}"
    );
    // Let go, the held request's reply fails; the server, which takes nothing while its one
    // slot is busy, then sees its stream ended and consumes again.
    permits.add_permits(1);
    counted("disconnected", 1.0).await;
    eventually(LIMIT, "the server reconnected", || async {
        render(&registry).contains("fibrpc_transport_reconnects_total{role=\"server\"} 1")
    })
    .await;
    // The request delivered again is answered from the server's memory of recent calls
    // (`Held` is not idempotent: it is not run twice), to a reply queue gone with the cut
    // (the broker drops such a reply, or refuses it: then it is counted unroutable).
    eventually(LIMIT, "the redelivered request answered", || async {
        server_outcome(&registry, "ok") + server_outcome(&registry, "unroutable") == 1.0
    })
    .await;
    assert!(
        held.try_recv().is_err(),
        "the handler ran again for the redelivered request"
    );

    drop(client);
    server.stop().await;
    fibrpc_conformance::delete_queue(&factory, &queue).await;
}
