//! What is particular to the Redis adapter, against the local Redis (`REDIS_URL`, by default
//! redis://127.0.0.1:6379): requests taken over from a consumer that died, kept by one that
//! lives however long it works, malformed entries, an unreachable server.

use std::time::{Duration, Instant};

use fibrpc_ports::QueueAdmin;
use fibrpc_ports::TransportError;
use fibrpc_ports::{Envelope, IncomingRequest, ReplyTransport, RequestStream, RequestTransport};
use fibrpc_redis::{stream_key, RedisConfig, RedisTransport};
use fibrpc_test_support::{skip_or_fail, unique, unique_queue, within};

const LIMIT: Duration = Duration::from_secs(10);
/// Short, so that the tests that wait for it are quick; long enough that a busy machine does
/// not delay a renewal (every quarter of it) past it.
const CLAIM_AFTER: Duration = Duration::from_secs(1);

fn config() -> RedisConfig {
    RedisConfig {
        url: std::env::var("REDIS_URL").unwrap_or_else(|_| RedisConfig::default().url),
        claim_after: CLAIM_AFTER,
        client_name: unique("fibrpc-test"),
        ..RedisConfig::default()
    }
}

/// A transport, or None (the test skipped, or failed under CI=true) without Redis.
async fn transport() -> Option<RedisTransport> {
    match RedisTransport::connect(config()).await {
        Ok(transport) => Some(transport),
        Err(error) => {
            skip_or_fail("Redis", error, "start redis-server");
            None
        }
    }
}

/// A raw connection, for what the adapter never does.
async fn raw() -> redis::aio::MultiplexedConnection {
    redis::Client::open(config().url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

async fn next(stream: &mut Box<dyn RequestStream>) -> IncomingRequest {
    within(LIMIT, "the next request", stream.next_request())
        .await
        .expect("the stream failed")
}

/// Nothing listens on port 1: `connect` fails at once with `Unreachable`, naming the address
/// with its password redacted. Needs no Redis.
#[tokio::test]
async fn an_unreachable_server_is_reported_fast_without_its_password() {
    let config = RedisConfig {
        url: "redis://fibrpc:hunter2@127.0.0.1:1".to_owned(),
        connect_timeout: Duration::from_secs(3),
        ..RedisConfig::default()
    };
    let started = Instant::now();
    let outcome = within(LIMIT, "connect", RedisTransport::connect(config)).await;
    let Err(error) = outcome else {
        panic!("connected to a closed port");
    };
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let TransportError::Unreachable { address, .. } = &error else {
        panic!("not Unreachable: {error:?}");
    };
    assert_eq!(address, "redis://fibrpc:***@127.0.0.1:1");
    assert!(
        !format!("{error} {error:?}").contains("hunter2"),
        "{error:?}"
    );
}

/// A consumer that died holding a request (it read it, and nothing put it back) leaves it
/// pending; another consumer takes it over after `claim_after`, marked redelivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_consumers_request_is_taken_over() {
    let Some(transport) = transport().await else {
        return;
    };
    let queue = unique_queue("redis-dead");
    transport.declare_request_queue(&queue).await.unwrap();
    transport
        .send_request(&queue, Envelope::with_body("orphan"))
        .await
        .unwrap();
    let mut dead = raw().await;
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("fibrpc")
        .arg("dead-consumer")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(stream_key(&queue))
        .arg(">")
        .query_async(&mut dead)
        .await
        .unwrap();
    let mut stream = transport.consume_requests(&queue, 1).await.unwrap();
    let taken = next(&mut stream).await;
    assert_eq!(taken.envelope.body, b"orphan");
    assert!(taken.redelivered, "a request taken over must say so");
    taken.ack().await.unwrap();
    assert_eq!(transport.queue_depth(&queue).await.unwrap(), 0);
    transport.delete_queue(&queue).await.unwrap();
}

/// A consumer that holds a request five times `claim_after` keeps it: another consumer of the
/// queue is not handed it meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_consumer_keeps_what_it_holds() {
    let Some(transport) = transport().await else {
        return;
    };
    let queue = unique_queue("redis-lease");
    transport.declare_request_queue(&queue).await.unwrap();
    transport
        .send_request(&queue, Envelope::with_body("slow"))
        .await
        .unwrap();
    let mut holder = transport.consume_requests(&queue, 1).await.unwrap();
    let held = next(&mut holder).await;
    let other = RedisTransport::connect(config()).await.unwrap();
    let mut rival = other.consume_requests(&queue, 1).await.unwrap();
    // Watching for what must not happen: bounded, and the length is what is under test.
    if let Ok(stolen) = tokio::time::timeout(CLAIM_AFTER * 5, rival.next_request()).await {
        panic!("a held request went to a second consumer: {stolen:?}");
    }
    held.ack().await.unwrap();
    assert_eq!(transport.queue_depth(&queue).await.unwrap(), 0);
    transport.delete_queue(&queue).await.unwrap();
}

/// An entry that is not a request (no body, here) is dropped with a log line and removed; the
/// stream goes on to the next request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_entries_are_dropped_and_the_stream_goes_on() {
    let Some(transport) = transport().await else {
        return;
    };
    let queue = unique_queue("redis-malformed");
    transport.declare_request_queue(&queue).await.unwrap();
    let _: String = redis::cmd("XADD")
        .arg(stream_key(&queue))
        .arg("*")
        .arg("no-body")
        .arg("x")
        .query_async(&mut raw().await)
        .await
        .unwrap();
    transport
        .send_request(&queue, Envelope::with_body("fine"))
        .await
        .unwrap();
    let mut stream = transport.consume_requests(&queue, 4).await.unwrap();
    let request = next(&mut stream).await;
    assert_eq!(request.envelope.body, b"fine");
    request.ack().await.unwrap();
    fibrpc_test_support::eventually(LIMIT, "the malformed entry to be removed", || {
        let (transport, queue) = (transport.clone(), queue.clone());
        async move { transport.queue_depth(&queue).await.unwrap() == 0 }
    })
    .await;
    transport.delete_queue(&queue).await.unwrap();
}

/// A reply to an inbox that was dropped is refused (`NoSuchQueue`), not left in a list nobody
/// reads; while it is open, replies get through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reply_to_a_closed_inbox_is_refused() {
    let Some(transport) = transport().await else {
        return;
    };
    let mut inbox = transport.open_reply_inbox().await.unwrap();
    let address = inbox.address().to_owned();
    transport
        .send_reply(&address, Envelope::with_body("open"))
        .await
        .unwrap();
    let got = within(LIMIT, "the reply", inbox.next_reply())
        .await
        .unwrap();
    assert_eq!(got.body, b"open");
    drop(inbox);
    fibrpc_test_support::eventually(LIMIT, "replies to the closed inbox to be refused", || {
        let (transport, address) = (transport.clone(), address.clone());
        async move {
            let outcome = transport
                .send_reply(&address, Envelope::with_body("closed"))
                .await;
            outcome == Err(TransportError::NoSuchQueue { queue: address })
        }
    })
    .await;
}
