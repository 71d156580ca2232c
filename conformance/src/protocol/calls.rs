//! Calls, with whatever service: answers reach their callers, deadlines hold, nothing stays
//! pending, and no call is lost to a dead server or a lost connection.

use std::time::Duration;

use fibrpc_ports::{Stall, TransportError};
use fibrpc_rpc::{CallError, ClientConfig, Unanswered};
use futures_util::future::join_all;
use tokio::time::Instant;

use super::{
    bare_consumer, client, client_config, connect, queue, server_config, silent_consumer, skipped,
    take_request, Workload, LIMIT,
};
use crate::{eventually, Guarantee, TransportFactory};

pub async fn one_client_one_server(factory: &dyn TransportFactory, workload: &impl Workload) {
    let queue = queue(factory, "one-to-one").await;
    let server = workload.start(&connect(factory).await, server_config(&queue));
    server.consuming().await;
    let client = client(factory, client_config(&queue)).await;
    for i in [30, 100, 0] {
        workload.call(&client, i).await.unwrap();
    }
    assert_eq!(client.stats().pending, 0);
    assert_eq!(server.stop().await.answered(), 3);
    crate::delete_queue(factory, &queue).await;
}

/// 8 clients with 64 calls in flight each, over 2 servers: every caller gets its own answer.
pub async fn many_clients_many_servers(factory: &dyn TransportFactory, workload: &impl Workload) {
    const CLIENTS: u64 = 8;
    const CALLS: u64 = 64;
    let queue = queue(factory, "many").await;
    let servers = [
        workload.start(&connect(factory).await, server_config(&queue)),
        workload.start(&connect(factory).await, server_config(&queue)),
    ];
    for server in &servers {
        server.consuming().await;
    }
    let mut callers = Vec::new();
    for c in 0..CLIENTS {
        let client = client(factory, client_config(&queue)).await;
        let workload = workload.clone();
        callers.push(tokio::spawn(async move {
            // A distinct call number per call, so a reply routed to the wrong caller shows.
            let calls = (0..CALLS).map(|i| workload.call(&client, c * CALLS + i));
            let outcomes = join_all(calls).await;
            (client.stats(), outcomes)
        }));
    }
    for caller in callers {
        let (stats, outcomes) = caller.await.unwrap();
        assert_eq!(outcomes.len() as u64, CALLS);
        for outcome in outcomes {
            outcome.unwrap();
        }
        assert_eq!(stats.pending, 0);
        assert_eq!(stats.unmatched_replies, 0);
    }
    let mut answered = 0;
    for server in servers {
        answered += server.stop().await.answered();
    }
    assert_eq!(answered, CLIENTS * CALLS);
    crate::delete_queue(factory, &queue).await;
}

pub async fn call_without_server_times_out_at_its_deadline(
    factory: &dyn TransportFactory,
    workload: &impl Workload,
) {
    let queue = queue(factory, "no-server").await;
    let _silent = silent_consumer(factory, &queue).await;
    let timeout = Duration::from_millis(300);
    let config = ClientConfig {
        timeout,
        ..client_config(&queue)
    };
    let client = client(factory, config).await;
    let started = Instant::now();
    let outcome = workload.call(&client, 30).await;
    assert!(
        unanswered_for_want_of_a_server(&outcome, timeout, &queue),
        "{outcome:?}"
    );
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout, "gave up early, after {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(1),
        "gave up late, after {elapsed:?}"
    );
    assert_eq!(client.stats().pending, 0);
    crate::delete_queue(factory, &queue).await;
}

pub async fn cancelled_call_leaves_nothing_pending(
    factory: &dyn TransportFactory,
    workload: &impl Workload,
) {
    let queue = queue(factory, "cancel").await;
    let client = client(factory, client_config(&queue)).await;
    let mut taker = bare_consumer(&connect(factory).await, &queue, 1).await;
    let call = tokio::spawn({
        let (client, workload) = (client.clone(), workload.clone());
        async move { workload.call(&client, 30).await }
    });
    let request = take_request(&mut taker).await;
    assert_eq!(client.stats().pending, 1, "the call is in flight");
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(client.stats().pending, 0);
    request.ack().await.unwrap();
    crate::delete_queue(factory, &queue).await;
}

/// A consumer that goes away holding requests it never settled: they reach another server.
pub async fn unacknowledged_requests_go_to_another_server(
    factory: &dyn TransportFactory,
    workload: &impl Workload,
) {
    const CALLS: u64 = 10;
    let check = "unacknowledged_requests_go_to_another_server";
    if skipped(factory, check, Guarantee::Redelivery) {
        return;
    }
    let queue = queue(factory, "redeliver").await;
    let client = client(factory, client_config(&queue)).await;
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let (client, workload) = (client.clone(), workload.clone());
            tokio::spawn(async move { workload.call(&client, i).await })
        })
        .collect();

    let doomed = connect(factory).await;
    let mut stream = doomed
        .replies
        .consume_requests(&queue, CALLS as u16)
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..CALLS {
        let request = tokio::time::timeout(LIMIT, stream.next_request())
            .await
            .unwrap()
            .unwrap();
        assert!(!request.redelivered);
        held.push(request);
    }
    // The doomed server dies: its stream and its unsettled requests are dropped.
    drop(held);
    drop(stream);
    drop(doomed);

    let survivor = workload.start(&connect(factory).await, server_config(&queue));
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(survivor.stop().await.answered(), CALLS);
    crate::delete_queue(factory, &queue).await;
}

/// The connection drops with calls in flight: they fail at once with `Disconnected`, not at
/// their deadline; the client opens a new reply address and later calls succeed.
pub async fn lost_connection_fails_calls_promptly_then_recovers(
    factory: &dyn TransportFactory,
    workload: &impl Workload,
) {
    let queue = queue(factory, "disconnect").await;
    let _silent = silent_consumer(factory, &queue).await;
    let timeout = Duration::from_secs(30);
    let config = ClientConfig {
        timeout,
        ..client_config(&queue)
    };
    let client = client(factory, config).await;
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let (client, workload) = (client.clone(), workload.clone());
            tokio::spawn(async move { workload.call(&client, i).await })
        })
        .collect();
    eventually(LIMIT, "calls are in flight", || async {
        client.stats().pending == 5
    })
    .await;

    let cut = Instant::now();
    if !crate::sever(
        factory,
        "lost_connection_fails_calls_promptly_then_recovers",
    )
    .await
    {
        for call in calls {
            call.abort();
        }
        crate::delete_queue(factory, &queue).await;
        return;
    }
    for call in calls {
        match call.await.unwrap() {
            Err(CallError::Transport(TransportError::Disconnected { .. })) => {}
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
    assert!(
        cut.elapsed() < timeout / 2,
        "calls waited for their deadline"
    );
    assert_eq!(client.stats().pending, 0);

    factory.admin().declare_request_queue(&queue).await.unwrap();
    let server = workload.start(&connect(factory).await, server_config(&queue));
    server.consuming().await;
    eventually(LIMIT, "the reply address is opened again", || async {
        client.stats().reconnects == 1 && client.reply_address().is_some()
    })
    .await;
    workload.call(&client, 30).await.unwrap();
    server.stop().await;
    crate::delete_queue(factory, &queue).await;
}

/// Thousands of calls nobody answers, many at a time: each times out, and afterwards the
/// client holds nothing for any of them.
pub async fn many_timed_out_calls_leave_nothing_behind(
    factory: &dyn TransportFactory,
    workload: &impl Workload,
) {
    const CALLS: u64 = 5_000;
    let queue = queue(factory, "timeouts").await;
    let _silent = silent_consumer(factory, &queue).await;
    let timeout = Duration::from_millis(50);
    let config = ClientConfig {
        timeout,
        max_in_flight: 500,
        ..client_config(&queue)
    };
    let client = client(factory, config).await;
    let calls = (0..CALLS).map(|i| workload.call(&client, i));
    let outcomes = join_all(calls).await;
    assert!(outcomes
        .iter()
        .all(|outcome| unanswered_for_want_of_a_server(outcome, timeout, &queue)));
    assert_eq!(client.stats().pending, 0);
    crate::delete_queue(factory, &queue).await;
}

/// A timeout after `timeout`, saying that no server consumes `queue` where the adapter can
/// tell, and nothing else.
fn unanswered_for_want_of_a_server<T, E>(
    outcome: &Result<T, CallError<E>>,
    timeout: Duration,
    queue: &str,
) -> bool {
    let Err(CallError::Timeout(timed_out)) = outcome else {
        return false;
    };
    let no_consumer = Unanswered::Stalled(Stall::NoConsumer {
        queue: queue.to_owned(),
    });
    timed_out.after == timeout
        && timed_out
            .seen
            .as_ref()
            .is_none_or(|seen| *seen == no_consumer)
}
