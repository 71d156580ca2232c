//! A flood of calls nobody answers: each times out, and memory does not grow with them.

use fibrpc_ports::QueueAdmin;
use std::time::Duration;

use fibrpc_conformance::{unique_queue, TransportFactory};
use fibrpc_fib::Fib;
use fibrpc_rpc::{CallError, ClientConfig, RpcClient};
use fibrpc_test_support::own_resident_kib;
use fibrpc_tests::AmqpFactory;

use super::client_config;

/// 100,000 calls to a queue nobody serves: each times out; afterwards nothing is pending and
/// resident memory has not grown with the count.
pub async fn timeout_flood(factory: &AmqpFactory) -> String {
    const FLOOD: u64 = 100_000;
    const BATCH: u64 = 10_000;
    let queue = unique_queue("flood");
    factory.admin().declare_request_queue(&queue).await.unwrap();
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
            async move { client.call::<Fib>(batch * BATCH + i).await }
        });
        let outcomes = futures_util::future::join_all(calls).await;
        assert!(outcomes
            .iter()
            .all(|outcome| matches!(outcome, Err(CallError::Timeout(_)))));
        assert_eq!(client.stats().pending, 0);
        // Unreadable /proc fails the test: a bound that cannot be measured is no bound.
        resident.push(own_resident_kib());
    }
    fibrpc_conformance::delete_queue(factory, &queue).await;
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
