//! The transport contract, checked through the ports alone: each check is one MUST sentence
//! of `fibrpc-ports`. A broker that cannot give a guarantee says so through
//! [`TransportFactory::lacks`], and the check is skipped with the reason printed.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fibrpc_ports::{Envelope, IncomingRequest, RequestStream, TransportError};

use crate::{unique_queue, Connection, Guarantee, TransportFactory};

/// Expands to one test per contract check, over the factory `$factory` evaluates to
/// (`Option<impl TransportFactory>`; `None` skips).
#[macro_export]
macro_rules! contract_tests {
    ($factory:expr) => {
        $crate::contract_tests!(@each $factory;
            replies_reach_their_own_inbox,
            fields_are_carried_through,
            large_bodies_arrive_byte_exact,
            unsettled_requests_are_delivered_again,
            prefetch_limits_unsettled_requests,
            rejection_requeues_or_discards,
            cancel_hands_back_what_it_holds,
            expired_requests_are_not_handed_out,
            missing_queues_are_reported,
            lost_connections_are_reported,
        );
    };
    (@each $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(factory) = $factory else { return };
                $crate::contract::$check(&factory).await;
            }
        )*
    };
}

const LIMIT: Duration = Duration::from_secs(10);
/// How long to watch for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);

/// True (and the reason printed) when the factory's broker lacks `guarantee`.
fn skipped(factory: &dyn TransportFactory, check: &str, guarantee: Guarantee) -> bool {
    match factory.lacks(guarantee) {
        Some(reason) => {
            eprintln!("skipping {check}: {reason}");
            true
        }
        None => false,
    }
}

async fn connect(factory: &dyn TransportFactory) -> Connection {
    factory
        .connect()
        .await
        .expect("cannot connect to the broker under test")
}

async fn queue(factory: &dyn TransportFactory, purpose: &str) -> String {
    let name = unique_queue(purpose);
    factory
        .declare_queue(&name)
        .await
        .expect("cannot declare the queue");
    name
}

async fn next(stream: &mut Box<dyn RequestStream>) -> IncomingRequest {
    tokio::time::timeout(LIMIT, stream.next_request())
        .await
        .expect("no request within the limit")
        .expect("the stream failed")
}

/// Asserts that no request is handed out for a while.
async fn nothing_more(stream: &mut Box<dyn RequestStream>, why: &str) {
    if let Ok(outcome) = tokio::time::timeout(QUIET, stream.next_request()).await {
        panic!("{why}: got {outcome:?}");
    }
}

/// Sends requests with bodies "0", "1", ... to `queue`.
async fn send_numbered(connection: &Connection, queue: &str, count: usize) {
    for i in 0..count {
        connection
            .requests
            .send_request(queue, request(&i.to_string()))
            .await
            .unwrap();
    }
}

fn request(body: &str) -> Envelope {
    Envelope {
        correlation_id: Some(format!("id-{body}")),
        content_type: Some("text/plain".to_owned()),
        body: body.as_bytes().to_vec(),
        ..Envelope::default()
    }
}

/// 4 reply inboxes with 50 requests each in flight, answered by an echo consumer: every
/// inbox gets exactly its own replies.
pub async fn replies_reach_their_own_inbox(factory: &dyn TransportFactory) {
    const INBOXES: usize = 4;
    const EACH: usize = 50;
    let queue = queue(factory, "routing").await;
    let server = connect(factory).await;
    let mut requests = server.replies.consume_requests(&queue, 64).await.unwrap();
    let echo = tokio::spawn(async move {
        for _ in 0..INBOXES * EACH {
            let request = next(&mut requests).await;
            let reply = Envelope {
                correlation_id: request.envelope.correlation_id.clone(),
                body: request.envelope.body.clone(),
                ..Envelope::default()
            };
            let reply_to = request.envelope.reply_to.clone().unwrap();
            server.replies.send_reply(&reply_to, reply).await.unwrap();
            request.ack().await.unwrap();
        }
    });
    let mut clients = Vec::new();
    for c in 0..INBOXES {
        let connection = connect(factory).await;
        let queue = queue.clone();
        clients.push(tokio::spawn(async move {
            let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
            let mut sent = HashSet::new();
            for i in 0..EACH {
                let id = format!("{c}-{i}");
                let envelope = Envelope {
                    correlation_id: Some(id.clone()),
                    reply_to: Some(inbox.address().to_owned()),
                    body: id.clone().into_bytes(),
                    ..Envelope::default()
                };
                connection
                    .requests
                    .send_request(&queue, envelope)
                    .await
                    .unwrap();
                sent.insert(id);
            }
            for _ in 0..EACH {
                let reply = tokio::time::timeout(LIMIT, inbox.next_reply())
                    .await
                    .unwrap()
                    .unwrap();
                let id = reply.correlation_id.unwrap();
                assert_eq!(
                    reply.body,
                    id.as_bytes(),
                    "body and correlation id disagree"
                );
                assert!(
                    sent.remove(&id),
                    "inbox {c} got a reply that is not its own: {id}"
                );
            }
            assert!(sent.is_empty());
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    echo.await.unwrap();
    factory.delete_queue(&queue).await;
}

pub async fn fields_are_carried_through(factory: &dyn TransportFactory) {
    let queue = queue(factory, "fields").await;
    let connection = connect(factory).await;
    let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
    let mut stream = connection
        .replies
        .consume_requests(&queue, 4)
        .await
        .unwrap();
    let full = Envelope {
        correlation_id: Some("a-correlation-id".to_owned()),
        reply_to: Some(inbox.address().to_owned()),
        content_type: Some("application/x-bincode".to_owned()),
        deadline: Some(Instant::now() + Duration::from_secs(30)),
        body: vec![0, 1, 2, 255],
    };
    connection
        .requests
        .send_request(&queue, full.clone())
        .await
        .unwrap();
    let got = next(&mut stream).await;
    assert_eq!(got.envelope.correlation_id, full.correlation_id);
    assert_eq!(got.envelope.reply_to, full.reply_to);
    assert_eq!(got.envelope.content_type, full.content_type);
    assert_eq!(got.envelope.body, full.body);
    let deadline = got.envelope.deadline.expect("the deadline was lost");
    assert!(
        deadline > Instant::now() + Duration::from_secs(20),
        "the deadline moved"
    );
    got.ack().await.unwrap();

    connection
        .requests
        .send_request(&queue, Envelope::with_body("bare"))
        .await
        .unwrap();
    let bare = next(&mut stream).await;
    assert_eq!(bare.envelope.correlation_id, None);
    assert_eq!(bare.envelope.reply_to, None);
    assert_eq!(bare.envelope.content_type, None);
    assert_eq!(bare.envelope.deadline, None);
    bare.ack().await.unwrap();

    let reply = Envelope {
        correlation_id: Some("back".to_owned()),
        content_type: Some("text/plain".to_owned()),
        body: b"832040".to_vec(),
        ..Envelope::default()
    };
    connection
        .replies
        .send_reply(inbox.address(), reply.clone())
        .await
        .unwrap();
    let got = tokio::time::timeout(LIMIT, inbox.next_reply())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.correlation_id, got.content_type, got.body),
        (reply.correlation_id, reply.content_type, reply.body)
    );
    factory.delete_queue(&queue).await;
}

pub async fn large_bodies_arrive_byte_exact(factory: &dyn TransportFactory) {
    let queue = queue(factory, "large").await;
    let connection = connect(factory).await;
    let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
    let mut stream = connection
        .replies
        .consume_requests(&queue, 1)
        .await
        .unwrap();
    let body: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    connection
        .requests
        .send_request(&queue, Envelope::with_body(body.clone()))
        .await
        .unwrap();
    let got = next(&mut stream).await;
    assert!(
        got.envelope.body == body,
        "the request body changed on the way"
    );
    got.ack().await.unwrap();
    connection
        .replies
        .send_reply(inbox.address(), Envelope::with_body(body.clone()))
        .await
        .unwrap();
    let reply = tokio::time::timeout(LIMIT, inbox.next_reply())
        .await
        .unwrap()
        .unwrap();
    assert!(reply.body == body, "the reply body changed on the way");
    factory.delete_queue(&queue).await;
}

pub async fn unsettled_requests_are_delivered_again(factory: &dyn TransportFactory) {
    if skipped(
        factory,
        "unsettled_requests_are_delivered_again",
        Guarantee::Redelivery,
    ) {
        return;
    }
    let queue = queue(factory, "redelivery").await;
    let sender = connect(factory).await;
    sender
        .requests
        .send_request(&queue, request("once"))
        .await
        .unwrap();
    {
        let doomed = connect(factory).await;
        let mut stream = doomed.replies.consume_requests(&queue, 1).await.unwrap();
        let first = next(&mut stream).await;
        assert!(!first.redelivered);
        // The consumer goes away without settling it.
    }
    let survivor = connect(factory).await;
    let mut stream = survivor.replies.consume_requests(&queue, 1).await.unwrap();
    let again = next(&mut stream).await;
    assert_eq!(again.envelope.body, b"once");
    assert!(again.redelivered, "a second delivery must say so");
    again.ack().await.unwrap();
    nothing_more(&mut stream, "an acknowledged request came back").await;
    factory.delete_queue(&queue).await;
}

pub async fn prefetch_limits_unsettled_requests(factory: &dyn TransportFactory) {
    if skipped(
        factory,
        "prefetch_limits_unsettled_requests",
        Guarantee::PrefetchLimit,
    ) {
        return;
    }
    let queue = queue(factory, "prefetch").await;
    let connection = connect(factory).await;
    send_numbered(&connection, &queue, 5).await;
    let mut stream = connection
        .replies
        .consume_requests(&queue, 2)
        .await
        .unwrap();
    let first = next(&mut stream).await;
    let _second = next(&mut stream).await;
    nothing_more(&mut stream, "a third request past a prefetch of 2").await;
    first.ack().await.unwrap();
    let _third = next(&mut stream).await;
    factory.delete_queue(&queue).await;
}

pub async fn rejection_requeues_or_discards(factory: &dyn TransportFactory) {
    let queue = queue(factory, "reject").await;
    let connection = connect(factory).await;
    connection
        .requests
        .send_request(&queue, request("requeued"))
        .await
        .unwrap();
    let mut stream = connection
        .replies
        .consume_requests(&queue, 1)
        .await
        .unwrap();
    next(&mut stream).await.reject(true).await.unwrap();
    let again = next(&mut stream).await;
    assert_eq!(again.envelope.body, b"requeued");
    if skipped(
        factory,
        "rejection_requeues_or_discards (discard)",
        Guarantee::RejectWithoutRequeue,
    ) {
        again.ack().await.unwrap();
    } else {
        again.reject(false).await.unwrap();
        nothing_more(&mut stream, "a request rejected without requeue came back").await;
    }
    factory.delete_queue(&queue).await;
}

pub async fn cancel_hands_back_what_it_holds(factory: &dyn TransportFactory) {
    let queue = queue(factory, "cancel").await;
    let connection = connect(factory).await;
    send_numbered(&connection, &queue, 5).await;
    let mut first = connection
        .replies
        .consume_requests(&queue, 5)
        .await
        .unwrap();
    let taken = next(&mut first).await;
    let taken_body = taken.envelope.body.clone();
    first.cancel().await.unwrap();
    assert!(matches!(
        first.next_request().await,
        Err(TransportError::Cancelled)
    ));
    taken
        .ack()
        .await
        .expect("a request handed out before cancel can still be settled");

    let other = connect(factory).await;
    let mut second = other.replies.consume_requests(&queue, 5).await.unwrap();
    let mut rest = HashSet::new();
    for _ in 0..4 {
        let request = next(&mut second).await;
        rest.insert(request.envelope.body.clone());
        request.ack().await.unwrap();
    }
    assert_eq!(rest.len(), 4, "the other consumer got duplicates");
    assert!(
        !rest.contains(&taken_body),
        "an acknowledged request was delivered again"
    );
    factory.delete_queue(&queue).await;
}

pub async fn expired_requests_are_not_handed_out(factory: &dyn TransportFactory) {
    if skipped(
        factory,
        "expired_requests_are_not_handed_out",
        Guarantee::Expiry,
    ) {
        return;
    }
    let queue = queue(factory, "expiry").await;
    let connection = connect(factory).await;
    let deadline = Instant::now() + Duration::from_millis(100);
    let expiring = Envelope {
        deadline: Some(deadline),
        ..request("late")
    };
    connection
        .requests
        .send_request(&queue, expiring)
        .await
        .unwrap();
    connection
        .requests
        .send_request(&queue, request("on time"))
        .await
        .unwrap();
    tokio::time::sleep_until(tokio::time::Instant::from_std(
        deadline + Duration::from_millis(50),
    ))
    .await;
    let mut stream = connection
        .replies
        .consume_requests(&queue, 4)
        .await
        .unwrap();
    let got = next(&mut stream).await;
    assert_eq!(
        got.envelope.body, b"on time",
        "an expired request was handed out"
    );
    got.ack().await.unwrap();
    factory.delete_queue(&queue).await;
}

pub async fn missing_queues_are_reported(factory: &dyn TransportFactory) {
    let connection = connect(factory).await;
    if !skipped(
        factory,
        "missing_queues_are_reported (requests)",
        Guarantee::NoSuchQueueOnRequest,
    ) {
        let missing = unique_queue("missing");
        let started = Instant::now();
        let outcome = connection
            .requests
            .send_request(&missing, request("x"))
            .await;
        assert_eq!(outcome, Err(TransportError::NoSuchQueue { queue: missing }));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
    }
    if !skipped(
        factory,
        "missing_queues_are_reported (replies)",
        Guarantee::NoSuchQueueOnReply,
    ) {
        let missing = unique_queue("missing-reply");
        let outcome = connection.replies.send_reply(&missing, request("x")).await;
        assert_eq!(outcome, Err(TransportError::NoSuchQueue { queue: missing }));
    }
}

pub async fn lost_connections_are_reported(factory: &dyn TransportFactory) {
    let queue = queue(factory, "lost").await;
    let connection = connect(factory).await;
    let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
    let mut stream = connection
        .replies
        .consume_requests(&queue, 1)
        .await
        .unwrap();
    if !factory.sever_connections().await {
        eprintln!("skipping lost_connections_are_reported: this adapter's factory cannot sever connections");
        return;
    }
    let lost = tokio::time::timeout(LIMIT, inbox.next_reply())
        .await
        .expect("the inbox hung");
    assert!(
        matches!(lost, Err(TransportError::Disconnected { .. })),
        "{lost:?}"
    );
    let lost = tokio::time::timeout(LIMIT, stream.next_request())
        .await
        .expect("the stream hung");
    assert!(
        matches!(lost, Err(TransportError::Disconnected { .. })),
        "{lost:?}"
    );

    // The same transport works again.
    factory.declare_queue(&queue).await.unwrap();
    let mut inbox = connection
        .requests
        .open_reply_inbox()
        .await
        .expect("no new inbox after the loss");
    connection
        .replies
        .send_reply(inbox.address(), request("back"))
        .await
        .unwrap();
    let reply = tokio::time::timeout(LIMIT, inbox.next_reply())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.body, b"back");
    factory.delete_queue(&queue).await;
}
