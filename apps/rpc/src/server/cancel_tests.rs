//! A request whose caller gave up is stopped at its deadline, unless its procedure runs to
//! completion: over the in-memory broker, with a real server and client.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc_in_memory::InMemoryBroker;
use tokio::sync::Notify;

use crate::metrics::{render, Metrics};
use crate::testing::EchoError;
use crate::{CallError, ClientConfig, Procedure, RpcClient, RpcServer, ServerConfig, Service};

/// Waits for the test's gate, then marks that it went on.
struct Slow;

impl Procedure for Slow {
    const NAME: &'static str = "test.slow";
    type Request = ();
    type Response = ();
    type Error = EchoError;
}

/// The same, for work that must finish once started.
struct MustFinish;

impl Procedure for MustFinish {
    const NAME: &'static str = "test.must-finish";
    const RUNS_TO_COMPLETION: bool = true;
    type Request = ();
    type Response = ();
    type Error = EchoError;
}

#[derive(Default)]
struct Gate {
    started: Notify,
    open: Notify,
    went_on: AtomicBool,
}

async fn pass(gate: Arc<Gate>) -> Result<(), EchoError> {
    gate.started.notify_one();
    gate.open.notified().await;
    gate.went_on.store(true, Ordering::SeqCst);
    Ok(())
}

#[tokio::test]
async fn a_request_past_its_deadline_is_stopped_unless_it_runs_to_completion() {
    let broker = InMemoryBroker::new();
    broker.declare_queue("rpc_queue");
    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::register(&mut registry);
    let (slow, must_finish) = (Arc::new(Gate::default()), Arc::new(Gate::default()));
    let service = Service::new(())
        .register(Slow, {
            let gate = slow.clone();
            move |_, ()| pass(gate.clone())
        })
        .register(MustFinish, {
            let gate = must_finish.clone();
            move |_, ()| pass(gate.clone())
        });
    let server = RpcServer::new(
        Arc::new(broker.connect()),
        ServerConfig {
            metrics: Some(metrics.clone()),
            ..ServerConfig::default()
        },
        service,
    );
    let stats = server.stats();
    let server = server.spawn();
    let client = RpcClient::connect(Arc::new(broker.connect()), ClientConfig::default())
        .await
        .unwrap();
    let short = Duration::from_millis(200);

    // The caller gives up at its deadline; so does the server, at the handler's await.
    let call = client.call_with_timeout::<Slow>((), short);
    let (outcome, ()) = tokio::join!(call, slow.started.notified());
    assert!(matches!(outcome, Err(CallError::Timeout(_))), "{outcome:?}");
    crate::testing::wait_until(|| stats.cancelled.load(Ordering::SeqCst) == 1).await;
    // Were it still running, this would let it go on (and the stop below wait for it).
    slow.open.notify_one();

    // A procedure that runs to completion goes on after its caller gave up.
    let call = client.call_with_timeout::<MustFinish>((), short);
    let (outcome, ()) = tokio::join!(call, must_finish.started.notified());
    assert!(matches!(outcome, Err(CallError::Timeout(_))), "{outcome:?}");
    must_finish.open.notify_one();
    crate::testing::wait_until(|| must_finish.went_on.load(Ordering::SeqCst)).await;
    server.stop().await.unwrap();
    assert!(
        !slow.went_on.load(Ordering::SeqCst),
        "the work after the await ran"
    );
    assert_eq!(stats.cancelled.load(Ordering::SeqCst), 1);
    assert_eq!(stats.answered(), 1);

    let text = render(&registry);
    let series = "fibrpc_server_requests_total{procedure=\"test.slow\",outcome=\"cancelled\"} 1";
    assert!(text.lines().any(|line| line == series), "{text}");
}
