//! The metrics, counted over the in-memory broker by a real server and client.

use std::sync::Arc;
use std::time::Duration;

use fibrpc_in_memory::InMemoryBroker;
use tokio::sync::Notify;

use super::*;
use crate::testing::Absent;
use crate::testing::{Echo, EchoError};
use crate::{CallError, ClientConfig, Endpoint, RpcClient, RpcServer, ServerConfig, Service};

/// The value of the sample `name{labels}` in `text`, 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.parse().unwrap())
}

fn echo_service() -> Service<()> {
    Service::default().register(Echo, |_, text: String| async move {
        if text == "no" {
            Err(EchoError::Refused(text))
        } else {
            Ok(text)
        }
    })
}

#[test]
fn outcomes_index_their_counters() {
    for (index, outcome) in ServerOutcome::ALL.into_iter().enumerate() {
        assert_eq!(outcome as usize, index);
    }
    for (index, outcome) in CallOutcome::ALL.into_iter().enumerate() {
        assert_eq!(outcome as usize, index);
    }
}

#[tokio::test]
async fn calls_are_counted_by_procedure_and_outcome_on_both_sides() {
    let broker = InMemoryBroker::new();
    broker.declare_queue("rpc_queue");
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let server = RpcServer::new(
        Arc::new(broker.connect()),
        ServerConfig {
            metrics: Some(metrics.clone()),
            ..ServerConfig::default()
        },
        echo_service(),
    )
    .spawn();
    let client = RpcClient::connect(
        Arc::new(broker.connect()),
        ClientConfig {
            metrics: Some(metrics.clone()),
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap();

    for i in 0..5 {
        assert_eq!(
            client.call::<Echo>(i.to_string()).await.unwrap(),
            i.to_string()
        );
    }
    for _ in 0..2 {
        let refused = client.call::<Echo>("no".to_owned()).await;
        assert!(matches!(refused, Err(CallError::Remote(_))));
    }
    // The server hosts no such procedure: a fault, counted under "unknown", not under the
    // name sent.
    assert!(matches!(
        client.call::<Absent>(10).await,
        Err(CallError::Fault(_))
    ));
    server.stop().await.unwrap();

    let text = render(&registry);
    let server_requests = |procedure: &str, outcome: &str| {
        let series = format!(
            "fibrpc_server_requests_total{{procedure=\"{procedure}\",outcome=\"{outcome}\"}}"
        );
        sample(&text, &series)
    };
    assert_eq!(server_requests("test.echo", "ok"), 5.0, "{text}");
    assert_eq!(server_requests("test.echo", "error"), 2.0);
    assert_eq!(server_requests("test.echo", "fault"), 0.0);
    assert_eq!(server_requests("unknown", "fault"), 1.0);
    let durations = "fibrpc_server_request_duration_seconds_count{procedure=\"test.echo\"}";
    assert_eq!(sample(&text, durations), 7.0);
    assert_eq!(sample(&text, "fibrpc_server_in_flight"), 0.0);

    let calls = |procedure: &str, outcome: &str| {
        let series =
            format!("fibrpc_client_calls_total{{procedure=\"{procedure}\",outcome=\"{outcome}\"}}");
        sample(&text, &series)
    };
    assert_eq!(calls("test.echo", "ok"), 5.0);
    assert_eq!(calls("test.echo", "remote_error"), 2.0);
    assert_eq!(calls("test.absent", "fault"), 1.0);
    let durations = "fibrpc_client_call_duration_seconds_count{procedure=\"test.echo\"}";
    assert_eq!(sample(&text, durations), 7.0);
    assert_eq!(sample(&text, "fibrpc_client_replies_dropped_total"), 0.0);
}

#[tokio::test]
async fn timeouts_late_replies_and_reconnects_are_counted() {
    let broker = InMemoryBroker::new();
    broker.declare_queue("rpc_queue");
    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let release = Arc::new(Notify::new());
    let held = release.clone();
    let slow = Service::default().register(Echo, move |_, text: String| {
        let held = held.clone();
        async move {
            held.notified().await;
            Ok(text)
        }
    });
    let server_config = ServerConfig {
        metrics: Some(metrics.clone()),
        ..ServerConfig::default()
    };
    let server = RpcServer::new(Arc::new(broker.connect()), server_config, slow).spawn();
    let client_config = ClientConfig {
        metrics: Some(metrics.clone()),
        timeout: Duration::from_millis(50),
        ..ClientConfig::default()
    };
    let client = RpcClient::connect(Arc::new(broker.connect()), client_config)
        .await
        .unwrap();

    let late = client.call::<Echo>("late".to_owned()).await;
    assert!(matches!(late, Err(CallError::Timeout(_))), "{late:?}");
    // The reply the server sends now comes after its caller gave up.
    release.notify_one();
    let dropped = "fibrpc_client_replies_dropped_total";
    eventually(|| sample(&render(&registry), dropped) == 1.0).await;

    broker.disconnect_all();
    let reconnects = |role: &str| {
        let series = format!("fibrpc_transport_reconnects_total{{role=\"{role}\"}}");
        sample(&render(&registry), &series)
    };
    eventually(|| reconnects("server") == 1.0 && reconnects("client") == 1.0).await;
    let text = render(&registry);
    let timeouts = "fibrpc_client_calls_total{procedure=\"test.echo\",outcome=\"timeout\"}";
    assert_eq!(sample(&text, timeouts), 1.0, "{text}");
    server.stop().await.unwrap();
}

/// Polls `condition` every few milliseconds until it holds, for at most 10 s.
async fn eventually(condition: impl Fn() -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "the counters did not reach what was expected"
    );
}

#[tokio::test]
async fn a_call_to_a_missing_queue_is_counted_unroutable() {
    let broker = InMemoryBroker::new();
    let mut registry = Registry::default();
    let config = ClientConfig {
        queue: "nobody-here".to_owned(),
        metrics: Some(Metrics::register(&mut registry)),
        ..ClientConfig::default()
    };
    let client = RpcClient::connect(Arc::new(broker.connect()), config)
        .await
        .unwrap();
    assert!(client.call::<Absent>(10).await.is_err());
    let unroutable = "fibrpc_client_calls_total{procedure=\"test.absent\",outcome=\"unroutable\"}";
    assert_eq!(sample(&render(&registry), unroutable), 1.0);
}

/// What counting adds to one call, both sides together, single-threaded (uncontended):
/// `CARGO_PROFILE_DEV_OPT_LEVEL=3 cargo test -p fibrpc-rpc --lib counting_cost -- --ignored --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn counting_cost_per_call() {
    use std::hint::black_box;
    use std::time::Instant;

    let mut registry = Registry::default();
    let metrics = Metrics::register(&mut registry);
    let server = metrics.server_procedure("fib");
    let calls = 5_000_000u32;
    let started = Instant::now();
    for _ in 0..calls {
        // As a call does: the client's clock, the server's clock, then each side's record.
        let called = Instant::now();
        let taken = Instant::now();
        let in_flight = server.enter();
        server.record_request(black_box(ServerOutcome::Ok), taken.elapsed());
        drop(in_flight);
        let client = metrics.client_procedure(black_box(<Absent as Endpoint>::NAME));
        client.record_call(black_box(CallOutcome::Ok), called.elapsed());
    }
    let per_call = started.elapsed() / calls;
    let started = Instant::now();
    for _ in 0..calls {
        black_box(Instant::now());
    }
    let clock = started.elapsed() / calls;
    println!("counting costs {per_call:?} per call (client and server), of which 4 clock readings at {clock:?} each");
    assert!(render(&registry).contains("fibrpc_client_calls_total"));
}
