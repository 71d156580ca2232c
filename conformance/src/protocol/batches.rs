//! Several calls in one message (docs/wire.md): request batches answered call by call, each
//! with its own deadline, result and error; coalesced replies only for callers that read
//! them. The batches here are written byte by byte from the documented layout, as a client in
//! another language would.

use std::collections::HashMap;
use std::time::Duration;

use fibrpc_domain::{fib, Fibonacci};
use fibrpc_fib::Fib;
use fibrpc_ports::{Envelope, ReplyInbox};
use fibrpc_rpc::batch::{frame, BATCH_CONTENT_TYPE};
use fibrpc_rpc::{BatchLimits, CallError, ClientConfig, Procedure, Service};
use tokio::time::Instant;

use super::{client, client_config, connect, queue, server_config, RunningServer, LIMIT};
use crate::{eventually, Guarantee, TransportFactory};

/// A procedure that panics, for a poison call.
struct Boom;

impl Procedure for Boom {
    const NAME: &'static str = "conformance.boom";
    type Request = u64;
    type Response = u64;
    type Error = fibrpc_examples::text::TextError;
}

/// fib (JSON, bound 1000) and a procedure that panics, on one server.
async fn server(factory: &dyn TransportFactory, queue: &str) -> RunningServer {
    let service = Fib::service(Fibonacci::with_max_n(1000)).merge(Service::new(()).register(
        Boom,
        |_, n| async move {
            if n > 0 {
                panic!("boom {n}");
            }
            Ok(n)
        },
    ));
    let server = RunningServer::start(
        connect(factory).await.replies,
        server_config(queue),
        service,
    );
    server.consuming().await;
    server
}

/// One request item, field by field (docs/wire.md, "Several calls in one message").
fn item(id: &str, procedure: &str, deadline_ms: u64, body: &[u8]) -> Vec<u8> {
    let mut fields = Vec::new();
    let mut put = |name: &str, value: &[u8]| {
        fields.push(name.len() as u8);
        fields.extend_from_slice(name.as_bytes());
        fields.extend_from_slice(&(value.len() as u32).to_be_bytes());
        fields.extend_from_slice(value);
    };
    put("correlation_id", id.as_bytes());
    put("content_type", b"application/json");
    put("procedure", procedure.as_bytes());
    put("deadline_ms", deadline_ms.to_string().as_bytes());
    put("body", body);
    let mut item = (fields.len() as u32).to_be_bytes().to_vec();
    item.extend(fields);
    item
}

fn batch(items: &[Vec<u8>]) -> Vec<u8> {
    let mut body = (items.len() as u32).to_be_bytes().to_vec();
    for item in items {
        body.extend_from_slice(item);
    }
    body
}

/// The replies that arrive at `inbox` until `count` calls are answered, by correlation id,
/// and how many messages carried them.
async fn replies(
    inbox: &mut Box<dyn ReplyInbox>,
    count: usize,
) -> (HashMap<String, Envelope>, usize) {
    let mut answered = HashMap::new();
    let mut messages = 0;
    while answered.len() < count {
        let message = tokio::time::timeout(LIMIT, inbox.next_reply())
            .await
            .expect("not every call was answered")
            .unwrap();
        messages += 1;
        let replies = if frame::is_batch(&message) {
            let items = frame::decode(&message.body).expect("an unreadable reply batch");
            items.into_iter().map(|item| item.envelope).collect()
        } else {
            vec![message]
        };
        for reply in replies {
            let id = reply
                .correlation_id
                .clone()
                .expect("a reply without its call's id");
            assert!(
                answered.insert(id, reply).is_none(),
                "a call answered twice"
            );
        }
    }
    (answered, messages)
}

fn kind(reply: &Envelope) -> Option<&str> {
    reply.error.as_ref().map(|mark| mark.kind.as_str())
}

/// A batch of good calls, an undecodable one, one of an unknown procedure, one that panics,
/// one above fib's bound and one already expired: each good call gets its answer, each bad
/// one its own error reply, the expired one nothing, and the batch is acknowledged once.
pub async fn a_request_batch_is_answered_call_by_call(factory: &dyn TransportFactory) {
    let queue = queue(factory, "batch-calls").await;
    let server = server(factory, &queue).await;
    let connection = connect(factory).await;
    let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
    let long = 30_000;
    let body = batch(&[
        item("a", "fib", long, b"30"),
        item("b", "fib", long, b"not json"),
        item("c", "no.such.procedure", long, b"1"),
        item("d", Boom::NAME, long, b"7"),
        item("e", "fib", long, b"1001"),
        // No time left when sent: past its deadline on arrival.
        item("late", "fib", 0, b"5"),
        item("f", "fib", 5_000, b"10"),
    ]);
    let request = Envelope {
        reply_to: Some(inbox.address().to_owned()),
        content_type: Some(BATCH_CONTENT_TYPE.to_owned()),
        deadline: Some(std::time::Instant::now() + Duration::from_millis(long)),
        body,
        reads_batches: true,
        ..Envelope::default()
    };
    connection
        .requests
        .send_request(&queue, request)
        .await
        .unwrap();
    let (answered, messages) = replies(&mut inbox, 6).await;
    eprintln!("6 replies in {messages} messages");
    assert_eq!(answered["a"].body, b"\"832040\"");
    assert_eq!(kind(&answered["a"]), None);
    assert_eq!(
        answered["a"].content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(answered["f"].body, b"\"55\"");
    assert_eq!(kind(&answered["b"]), Some("invalid-request"));
    assert_eq!(kind(&answered["c"]), Some("unknown-procedure"));
    assert_eq!(kind(&answered["d"]), Some("internal"));
    assert_eq!(kind(&answered["e"]), Some("error"));
    assert!(!answered.contains_key("late"));
    let stats = server.stop().await;
    assert_eq!((stats.answered(), stats.error_replies()), (2, 4));
    assert_eq!(stats.expired.load(std::sync::atomic::Ordering::Relaxed), 1);
    // Acknowledged once all its replies were out: nothing left for redelivery.
    assert_eq!(factory.admin().queue_depth(&queue).await.unwrap(), 0);
    crate::delete_queue(factory, &queue).await;
}

/// A message of the batch content type whose framing cannot be read is set aside once (not
/// answered, not redelivered), and the server goes on serving.
pub async fn a_malformed_batch_is_set_aside_once(factory: &dyn TransportFactory) {
    let queue = queue(factory, "batch-malformed").await;
    let server = server(factory, &queue).await;
    let connection = connect(factory).await;
    let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
    let mut garbage = batch(&[item("a", "fib", 30_000, b"30")]);
    garbage.truncate(garbage.len() - 3);
    for body in [garbage, vec![0xff; 3]] {
        let request = Envelope {
            reply_to: Some(inbox.address().to_owned()),
            content_type: Some(BATCH_CONTENT_TYPE.to_owned()),
            body,
            ..Envelope::default()
        };
        connection
            .requests
            .send_request(&queue, request)
            .await
            .unwrap();
    }
    let good = Envelope {
        reply_to: Some(inbox.address().to_owned()),
        content_type: Some(BATCH_CONTENT_TYPE.to_owned()),
        body: batch(&[item("good", "fib", 30_000, b"10")]),
        ..Envelope::default()
    };
    connection
        .requests
        .send_request(&queue, good)
        .await
        .unwrap();
    let (answered, _) = replies(&mut inbox, 1).await;
    assert_eq!(answered["good"].body, b"\"55\"");
    let client = client(factory, client_config(&queue)).await;
    assert_eq!(client.call::<Fib>(20).await.unwrap(), fib(20));
    let stats = server.stop().await;
    assert_eq!(stats.answered(), 2);
    if factory.lacks(Guarantee::RejectWithoutRequeue).is_none() {
        assert_eq!(
            factory.admin().queue_depth(&queue).await.unwrap(),
            0,
            "redelivered"
        );
    }
    crate::delete_queue(factory, &queue).await;
}

/// Calls from one reply address, released at once: a caller that says it reads coalesced
/// replies gets every reply right (alone or together); one that does not (the tutorial's)
/// never gets a batch.
pub async fn only_callers_that_read_them_get_coalesced_replies(factory: &dyn TransportFactory) {
    const CALLS: usize = 40;
    let queue = queue(factory, "batch-replies").await;
    let server = server(factory, &queue).await;
    let connection = connect(factory).await;
    for reads_batches in [false, true] {
        let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
        for i in 0..CALLS {
            let request = Envelope {
                correlation_id: Some(i.to_string()),
                reply_to: Some(inbox.address().to_owned()),
                content_type: Some("application/json".to_owned()),
                procedure: Some("fib".to_owned()),
                body: i.to_string().into_bytes(),
                reads_batches,
                ..Envelope::default()
            };
            connection
                .requests
                .send_request(&queue, request)
                .await
                .unwrap();
        }
        let mut answered = 0;
        let mut messages = 0;
        while answered < CALLS {
            let message = tokio::time::timeout(LIMIT, inbox.next_reply())
                .await
                .expect("not every call was answered")
                .unwrap();
            messages += 1;
            let replies = if frame::is_batch(&message) {
                assert!(
                    reads_batches,
                    "a coalesced reply to a caller that does not read them"
                );
                frame::decode(&message.body)
                    .unwrap()
                    .into_iter()
                    .map(|item| item.envelope)
                    .collect()
            } else {
                vec![message]
            };
            for reply in replies {
                let i: u64 = reply.correlation_id.as_deref().unwrap().parse().unwrap();
                assert_eq!(reply.body, format!("\"{}\"", fib(i)).into_bytes());
                answered += 1;
            }
        }
        eprintln!("reads_batches {reads_batches}: {CALLS} replies in {messages} messages");
    }
    server.stop().await;
    crate::delete_queue(factory, &queue).await;
}

/// A client that sends coalesced requests: many calls at once, good and bad, each with its
/// own result, error and deadline; a lone call goes out at once.
pub async fn coalesced_calls_keep_their_own_results(factory: &dyn TransportFactory) {
    const CALLS: u64 = 200;
    let queue = queue(factory, "batch-client").await;
    let server = server(factory, &queue).await;
    let config = ClientConfig {
        batch: Some(BatchLimits::calls(16)),
        timeout: LIMIT,
        ..client_config(&queue)
    };
    let client = client(factory, config).await;
    // Alone, at once: nothing to wait for.
    assert_eq!(client.call::<Fib>(30).await.unwrap(), fib(30));
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                let n = if i % 10 == 9 { 1000 + i } else { i };
                (n, client.call::<Fib>(n).await)
            })
        })
        .collect();
    for call in calls {
        let (n, outcome) = call.await.unwrap();
        match outcome {
            Ok(value) => assert_eq!(value, fib(n)),
            Err(CallError::Remote(_)) => assert!(n > 1000, "fib({n}) failed"),
            Err(error) => panic!("fib({n}): {error}"),
        }
    }
    // A call with a deadline far shorter than its batch mates' still ends at its own.
    let started = Instant::now();
    let short = client.call_with_timeout::<Boom>(0, Duration::from_millis(1));
    let (short, long) = tokio::join!(short, client.call::<Fib>(10));
    assert!(
        matches!(short, Err(CallError::Timeout(_)) | Ok(0)),
        "{short:?}"
    );
    assert_eq!(long.unwrap(), fib(10));
    assert!(started.elapsed() < LIMIT);
    eventually(LIMIT, "nothing pending", || async {
        client.stats().pending == 0
    })
    .await;
    let stats = server.stop().await;
    // Every call answered once; the short one too if it arrived in time.
    let total = stats.answered() + stats.error_replies();
    assert!((CALLS + 2..=CALLS + 3).contains(&total), "{total} answered");
    crate::delete_queue(factory, &queue).await;
}
