//! The transport contract, checked through the ports alone: each check is one or more MUST
//! sentences of `fibrpc-ports`, named in its documentation. A broker that cannot give a
//! guarantee says so through [`TransportFactory::lacks`], and the check (or the part of it
//! that needs the guarantee) is skipped with the reason printed.
//!
//! Every wait is bounded: [`LIMIT`] for what must happen, [`QUIET`] for how long to watch for
//! what must not.

use std::collections::HashSet;
use std::future::Future;
use std::time::{Duration, Instant};

use fibrpc_ports::{Envelope, IncomingRequest, ReplyInbox, RequestStream, TransportError};
use tokio::sync::mpsc;

use crate::{unique_queue, Connection, Guarantee, TransportFactory};

/// Expands to one test per contract check, over the factory `$factory` evaluates to
/// (`Option<impl TransportFactory>`; `None` skips).
#[macro_export]
macro_rules! contract_tests {
    ($factory:expr) => {
        $crate::contract_tests!(@each $factory;
            replies_reach_their_own_inbox,
            inbox_receives_as_soon_as_opened,
            fields_are_carried_through,
            large_bodies_arrive_byte_exact,
            consumers_share_a_queue,
            unsettled_requests_are_delivered_again,
            dropped_requests_are_delivered_again,
            prefetch_limits_unsettled_requests,
            rejection_requeues_or_discards,
            cancel_hands_back_what_it_holds,
            dropped_stream_hands_back_what_it_holds,
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

/// How long anything that must happen may take.
pub const LIMIT: Duration = Duration::from_secs(10);
/// How long to watch for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(300);

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

/// `future`'s output, or a panic naming `what` if it takes longer than [`LIMIT`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, future)
        .await
        .unwrap_or_else(|_| panic!("not within {LIMIT:?}: {what}"))
}

async fn connect(factory: &dyn TransportFactory) -> Connection {
    within("connecting", factory.connect())
        .await
        .expect("cannot connect to the broker under test")
}

async fn queue(factory: &dyn TransportFactory, purpose: &str) -> String {
    let name = unique_queue(purpose);
    within("declaring a queue", factory.declare_queue(&name))
        .await
        .expect("cannot declare the queue");
    name
}

async fn consume(connection: &Connection, queue: &str, prefetch: u16) -> Box<dyn RequestStream> {
    within(
        "starting a consumer",
        connection.replies.consume_requests(queue, prefetch),
    )
    .await
    .expect("cannot consume the queue")
}

async fn send(connection: &Connection, queue: &str, request: Envelope) {
    within(
        "sending a request",
        connection.requests.send_request(queue, request),
    )
    .await
    .expect("cannot send the request");
}

async fn reply(connection: &Connection, reply_to: &str, reply: Envelope) {
    within(
        "sending a reply",
        connection.replies.send_reply(reply_to, reply),
    )
    .await
    .expect("cannot send the reply");
}

async fn open_inbox(connection: &Connection) -> Box<dyn ReplyInbox> {
    within(
        "opening a reply inbox",
        connection.requests.open_reply_inbox(),
    )
    .await
    .expect("cannot open a reply inbox")
}

async fn next(stream: &mut Box<dyn RequestStream>) -> IncomingRequest {
    within("the next request", stream.next_request())
        .await
        .expect("the stream failed")
}

async fn next_reply(inbox: &mut Box<dyn ReplyInbox>) -> Envelope {
    within("the next reply", inbox.next_reply())
        .await
        .expect("the inbox failed")
}

async fn settle(outcome: impl Future<Output = Result<(), TransportError>>) {
    within("settling a request", outcome)
        .await
        .expect("cannot settle the request");
}

/// Asserts that no request is handed out for a while.
async fn nothing_more(stream: &mut Box<dyn RequestStream>, why: &str) {
    if let Ok(outcome) = tokio::time::timeout(QUIET, stream.next_request()).await {
        panic!("{why}: got {outcome:?}");
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

/// `send_request` ... reply inboxes: "the address MUST be this client's alone" and "each call
/// opens a new address". 4 inboxes (two on each of two connections) with 50 requests each in
/// flight, answered by a bare echo consumer that replies to each `reply_to` with the request's
/// correlation id: every inbox gets exactly its own replies, none twice.
pub async fn replies_reach_their_own_inbox(factory: &dyn TransportFactory) {
    const INBOXES: usize = 4;
    const EACH: usize = 50;
    let queue = queue(factory, "routing").await;
    let server = connect(factory).await;
    let mut requests = consume(&server, &queue, 64).await;
    let echo = tokio::spawn(async move {
        for _ in 0..INBOXES * EACH {
            let request = next(&mut requests).await;
            let echo = Envelope {
                correlation_id: request.envelope.correlation_id.clone(),
                body: request.envelope.body.clone(),
                ..Envelope::default()
            };
            let reply_to = request
                .envelope
                .reply_to
                .clone()
                .expect("a request lost its reply_to");
            reply(&server, &reply_to, echo).await;
            settle(request.ack()).await;
        }
    });
    let connections = [connect(factory).await, connect(factory).await];
    let mut inboxes = Vec::new();
    for c in 0..INBOXES {
        inboxes.push(open_inbox(&connections[c % 2]).await);
    }
    let addresses: HashSet<&str> = inboxes.iter().map(|inbox| inbox.address()).collect();
    assert_eq!(addresses.len(), INBOXES, "two inboxes share an address");

    let mut clients = Vec::new();
    for (c, mut inbox) in inboxes.into_iter().enumerate() {
        let connection = connections[c % 2].clone();
        let queue = queue.clone();
        clients.push(tokio::spawn(async move {
            let mut sent = HashSet::new();
            for i in 0..EACH {
                let id = format!("{c}-{i}");
                let envelope = Envelope {
                    correlation_id: Some(id.clone()),
                    reply_to: Some(inbox.address().to_owned()),
                    body: id.clone().into_bytes(),
                    ..Envelope::default()
                };
                send(&connection, &queue, envelope).await;
                sent.insert(id);
            }
            for _ in 0..EACH {
                let reply = next_reply(&mut inbox).await;
                let id = reply
                    .correlation_id
                    .expect("a reply lost its correlation id");
                assert_eq!(
                    reply.body,
                    id.as_bytes(),
                    "body and correlation id disagree"
                );
                assert!(
                    sent.remove(&id),
                    "inbox {c} got a reply that is not its own, or one twice: {id}"
                );
            }
            assert!(sent.is_empty());
        }));
    }
    for client in clients {
        within("a client's replies", client)
            .await
            .expect("a client failed");
    }
    within("the echo consumer", echo)
        .await
        .expect("the echo consumer failed");
    factory.delete_queue(&queue).await;
}

/// `open_reply_inbox`: "the adapter MUST be receiving on the address when this returns, so
/// that a reply sent right after is not lost". The reply comes from another connection,
/// right after the inbox opened, 20 times over.
pub async fn inbox_receives_as_soon_as_opened(factory: &dyn TransportFactory) {
    let client = connect(factory).await;
    let server = connect(factory).await;
    for i in 0..20 {
        let mut inbox = open_inbox(&client).await;
        reply(&server, inbox.address(), request(&i.to_string())).await;
        let got = next_reply(&mut inbox).await;
        assert_eq!(got.body, i.to_string().as_bytes());
    }
}

/// "carry every Envelope field except deadline through unchanged": correlation id, reply_to,
/// content type and body arrive as sent, on requests and on replies; the deadline arrives as
/// (about) the same instant; absent fields stay absent.
pub async fn fields_are_carried_through(factory: &dyn TransportFactory) {
    let queue = queue(factory, "fields").await;
    let connection = connect(factory).await;
    let mut inbox = open_inbox(&connection).await;
    let mut stream = consume(&connection, &queue, 4).await;
    let full = Envelope {
        correlation_id: Some("a-correlation-id".to_owned()),
        reply_to: Some(inbox.address().to_owned()),
        content_type: Some("application/x-bincode".to_owned()),
        deadline: Some(Instant::now() + Duration::from_secs(30)),
        body: vec![0, 1, 2, 255],
    };
    send(&connection, &queue, full.clone()).await;
    let got = next(&mut stream).await;
    assert_eq!(got.envelope.correlation_id, full.correlation_id);
    assert_eq!(got.envelope.reply_to, full.reply_to);
    assert_eq!(got.envelope.content_type, full.content_type);
    assert_eq!(got.envelope.body, full.body);
    let deadline = got.envelope.deadline.expect("the deadline was lost");
    let sent = full.deadline.unwrap_or_else(Instant::now);
    assert!(
        deadline > sent - Duration::from_secs(5) && deadline < sent + Duration::from_secs(1),
        "the deadline moved by more than the clocks can explain"
    );
    settle(got.ack()).await;

    send(&connection, &queue, Envelope::with_body("bare")).await;
    let bare = next(&mut stream).await;
    assert_eq!(
        bare.envelope,
        Envelope::with_body("bare"),
        "absent fields must stay absent"
    );
    settle(bare.ack()).await;

    let back = Envelope {
        correlation_id: Some("back".to_owned()),
        content_type: Some("text/plain".to_owned()),
        body: b"832040".to_vec(),
        ..Envelope::default()
    };
    reply(&connection, inbox.address(), back.clone()).await;
    assert_eq!(next_reply(&mut inbox).await, back);
    reply(&connection, inbox.address(), Envelope::with_body("bare")).await;
    assert_eq!(next_reply(&mut inbox).await, Envelope::with_body("bare"));
    factory.delete_queue(&queue).await;
}

/// Bodies are opaque bytes: a 1 MiB request and a 1 MiB reply arrive byte-exact.
pub async fn large_bodies_arrive_byte_exact(factory: &dyn TransportFactory) {
    let queue = queue(factory, "large").await;
    let connection = connect(factory).await;
    let mut inbox = open_inbox(&connection).await;
    let mut stream = consume(&connection, &queue, 1).await;
    let body: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    send(&connection, &queue, Envelope::with_body(body.clone())).await;
    let got = next(&mut stream).await;
    assert!(
        got.envelope.body == body,
        "the request body changed on the way"
    );
    settle(got.ack()).await;
    reply(
        &connection,
        inbox.address(),
        Envelope::with_body(body.clone()),
    )
    .await;
    let got = next_reply(&mut inbox).await;
    assert!(got.body == body, "the reply body changed on the way");
    factory.delete_queue(&queue).await;
}

/// `consume_requests`: "MUST let several consumers of one queue ... share its requests", and
/// `RequestTransport`: a request goes "to at most one consumer of the named queue at a time".
/// While one consumer holds a request, a consumer on another connection is handed another;
/// then both take the rest at once, and every request is handed out exactly once.
pub async fn consumers_share_a_queue(factory: &dyn TransportFactory) {
    const REQUESTS: usize = 20;
    let queue = queue(factory, "shared").await;
    let sender = connect(factory).await;
    for i in 0..REQUESTS {
        send(&sender, &queue, request(&i.to_string())).await;
    }
    let (one, two) = (connect(factory).await, connect(factory).await);
    let mut first = consume(&one, &queue, 4).await;
    let mut second = consume(&two, &queue, 4).await;
    let held = next(&mut first).await;
    let other = next(&mut second).await;
    assert_ne!(
        held.envelope.body, other.envelope.body,
        "two consumers were handed the same request"
    );
    let mut seen = HashSet::from([held.envelope.body.clone(), other.envelope.body.clone()]);
    settle(held.ack()).await;
    settle(other.ack()).await;

    let (taken, mut bodies) = mpsc::unbounded_channel();
    let takers: Vec<_> = [first, second]
        .into_iter()
        .map(|mut stream| {
            let taken = taken.clone();
            tokio::spawn(async move {
                while let Ok(request) = stream.next_request().await {
                    let body = request.envelope.body.clone();
                    settle(request.ack()).await;
                    if taken.send(body).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    while seen.len() < REQUESTS {
        let body = within("the rest of the requests", bodies.recv())
            .await
            .expect("both consumers stopped");
        assert!(seen.insert(body.clone()), "handed out twice: {body:?}");
    }
    if let Ok(Some(body)) = tokio::time::timeout(QUIET, bodies.recv()).await {
        panic!("handed out again after it was acknowledged: {body:?}");
    }
    for taker in takers {
        taker.abort();
    }
    factory.delete_queue(&queue).await;
}

/// `RequestTransport`: a request goes "again to another if that consumer goes away without
/// acknowledging it", and `IncomingRequest::redelivered` says so.
pub async fn unsettled_requests_are_delivered_again(factory: &dyn TransportFactory) {
    let check = "unsettled_requests_are_delivered_again";
    if skipped(factory, check, Guarantee::Redelivery) {
        return;
    }
    let queue = queue(factory, "redelivery").await;
    let sender = connect(factory).await;
    send(&sender, &queue, request("once")).await;
    {
        let doomed = connect(factory).await;
        let mut stream = consume(&doomed, &queue, 1).await;
        let first = next(&mut stream).await;
        assert!(
            !first.redelivered,
            "a first delivery said it was a redelivery"
        );
        // The consumer goes away (stream, request and connection dropped) without settling.
    }
    let survivor = connect(factory).await;
    let mut stream = consume(&survivor, &queue, 1).await;
    let again = next(&mut stream).await;
    assert_eq!(again.envelope.body, b"once");
    assert!(again.redelivered, "a second delivery must say so");
    settle(again.ack()).await;
    nothing_more(&mut stream, "an acknowledged request came back").await;
    factory.delete_queue(&queue).await;
}

/// `IncomingRequest`: "a request dropped without being settled MUST be delivered again, to
/// this consumer or another", while its stream goes on.
pub async fn dropped_requests_are_delivered_again(factory: &dyn TransportFactory) {
    let check = "dropped_requests_are_delivered_again";
    if skipped(factory, check, Guarantee::Redelivery) {
        return;
    }
    let queue = queue(factory, "dropped").await;
    let connection = connect(factory).await;
    send(&connection, &queue, request("dropped")).await;
    let mut stream = consume(&connection, &queue, 1).await;
    drop(next(&mut stream).await);
    let again = next(&mut stream).await;
    assert_eq!(again.envelope.body, b"dropped");
    assert!(again.redelivered, "a second delivery must say so");
    settle(again.ack()).await;
    nothing_more(&mut stream, "an acknowledged request came back").await;
    factory.delete_queue(&queue).await;
}

/// `consume_requests`: "MUST hand out at most `prefetch` requests that are not yet settled".
/// With a prefetch of 2 and 5 queued, a third is handed out only once one is settled.
pub async fn prefetch_limits_unsettled_requests(factory: &dyn TransportFactory) {
    let check = "prefetch_limits_unsettled_requests";
    if skipped(factory, check, Guarantee::PrefetchLimit) {
        return;
    }
    let queue = queue(factory, "prefetch").await;
    let connection = connect(factory).await;
    for i in 0..5 {
        send(&connection, &queue, request(&i.to_string())).await;
    }
    let mut stream = consume(&connection, &queue, 2).await;
    let first = next(&mut stream).await;
    let second = next(&mut stream).await;
    nothing_more(&mut stream, "a third request past a prefetch of 2").await;
    settle(first.ack()).await;
    let third = next(&mut stream).await;
    nothing_more(&mut stream, "a fourth request past a prefetch of 2").await;
    settle(second.reject(true)).await;
    let fourth = next(&mut stream).await;
    settle(third.ack()).await;
    settle(fourth.ack()).await;
    factory.delete_queue(&queue).await;
}

/// `IncomingRequest::reject`: "to the queue when `requeue`, otherwise it is discarded".
pub async fn rejection_requeues_or_discards(factory: &dyn TransportFactory) {
    let queue = queue(factory, "reject").await;
    let connection = connect(factory).await;
    send(&connection, &queue, request("requeued")).await;
    let mut stream = consume(&connection, &queue, 1).await;
    settle(next(&mut stream).await.reject(true)).await;
    let again = next(&mut stream).await;
    assert_eq!(again.envelope.body, b"requeued");
    let check = "rejection_requeues_or_discards (discard)";
    if skipped(factory, check, Guarantee::RejectWithoutRequeue) {
        settle(again.ack()).await;
    } else {
        settle(again.reject(false)).await;
        nothing_more(&mut stream, "a request rejected without requeue came back").await;
    }
    factory.delete_queue(&queue).await;
}

/// `RequestStream::cancel`: "after this no request is handed out, and requests the adapter
/// holds but has not handed out MUST go back to the queue. Requests already handed out can
/// still be settled."
pub async fn cancel_hands_back_what_it_holds(factory: &dyn TransportFactory) {
    hands_back(factory, true).await;
}

/// `RequestStream::cancel`: "dropping the stream without calling this MUST have the same
/// effect".
pub async fn dropped_stream_hands_back_what_it_holds(factory: &dyn TransportFactory) {
    hands_back(factory, false).await;
}

/// With 5 queued, a consumer with a prefetch of 5 takes one and then stops (`cancel` or
/// dropped); a consumer on another connection gets the other 4, each once.
async fn hands_back(factory: &dyn TransportFactory, by_cancel: bool) {
    let queue = queue(factory, if by_cancel { "cancel" } else { "drop" }).await;
    let connection = connect(factory).await;
    for i in 0..5 {
        send(&connection, &queue, request(&i.to_string())).await;
    }
    let mut first = consume(&connection, &queue, 5).await;
    let taken = next(&mut first).await;
    let taken_body = taken.envelope.body.clone();
    if by_cancel {
        within("cancel", first.cancel())
            .await
            .expect("cancel failed");
        if let Ok(Ok(request)) = tokio::time::timeout(QUIET, first.next_request()).await {
            panic!("a request was handed out after cancel: {request:?}");
        }
    } else {
        drop(first);
    }
    settle(taken.ack()).await;

    let other = connect(factory).await;
    let mut second = consume(&other, &queue, 5).await;
    let mut rest = HashSet::new();
    for _ in 0..4 {
        let request = next(&mut second).await;
        assert!(
            rest.insert(request.envelope.body.clone()),
            "the other consumer got a duplicate"
        );
        assert_ne!(
            request.envelope.body, taken_body,
            "an acknowledged request was delivered again"
        );
        settle(request.ack()).await;
    }
    nothing_more(&mut second, "more requests than were sent").await;
    factory.delete_queue(&queue).await;
}

/// `Envelope::deadline`: "a transport that can expire messages MUST NOT deliver a request
/// after its deadline; one that cannot passes it on to the consumer". A request whose
/// deadline passes while it is queued is not handed out; where the factory lacks
/// [`Guarantee::Expiry`], it is handed out carrying its (past) deadline, so that the consumer
/// can drop it.
pub async fn expired_requests_are_not_handed_out(factory: &dyn TransportFactory) {
    let expires = !skipped(
        factory,
        "expired_requests_are_not_handed_out (checking that the deadline is passed on instead)",
        Guarantee::Expiry,
    );
    let queue = queue(factory, "expiry").await;
    let connection = connect(factory).await;
    let deadline = Instant::now() + Duration::from_millis(100);
    let expiring = Envelope {
        deadline: Some(deadline),
        ..request("late")
    };
    send(&connection, &queue, expiring).await;
    send(&connection, &queue, request("on time")).await;
    // Not synchronisation: the passing of the deadline is what is under test.
    tokio::time::sleep_until((deadline + Duration::from_millis(50)).into()).await;
    let mut stream = consume(&connection, &queue, 4).await;
    let got = next(&mut stream).await;
    if !expires {
        assert_eq!(got.envelope.body, b"late");
        assert!(
            got.envelope.is_expired_at(Instant::now()),
            "a request handed out after its deadline must carry that deadline: {:?}",
            got.envelope.deadline
        );
        settle(got.ack()).await;
        let got = next(&mut stream).await;
        assert_eq!(got.envelope.body, b"on time");
        settle(got.ack()).await;
    } else {
        assert_eq!(
            got.envelope.body, b"on time",
            "an expired request was handed out"
        );
        settle(got.ack()).await;
        nothing_more(&mut stream, "an expired request was handed out").await;
    }
    factory.delete_queue(&queue).await;
}

/// `send_request` MUST fail with `NoSuchQueue` "when no queue of that name exists, if the
/// broker can tell" (at once, not at a timeout), and `send_reply` "when the address no longer
/// exists, if the broker can tell".
pub async fn missing_queues_are_reported(factory: &dyn TransportFactory) {
    let connection = connect(factory).await;
    let check = "missing_queues_are_reported (requests)";
    if !skipped(factory, check, Guarantee::NoSuchQueueOnRequest) {
        let missing = unique_queue("missing");
        let started = Instant::now();
        let outcome = within(
            "send_request to a missing queue",
            connection.requests.send_request(&missing, request("x")),
        )
        .await;
        assert_eq!(outcome, Err(TransportError::NoSuchQueue { queue: missing }));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "NoSuchQueue took {:?}",
            started.elapsed()
        );
    }
    let check = "missing_queues_are_reported (replies)";
    if !skipped(factory, check, Guarantee::NoSuchQueueOnReply) {
        let missing = unique_queue("missing-reply");
        let outcome = within(
            "send_reply to a missing address",
            connection.replies.send_reply(&missing, request("x")),
        )
        .await;
        assert_eq!(outcome, Err(TransportError::NoSuchQueue { queue: missing }));
    }
}

/// `ReplyInbox::next_reply` and `RequestStream::next_request`: a lost connection MUST be
/// reported as `Disconnected` promptly, and "an error MUST end" the inbox or stream: nothing
/// more comes out of it. The same connection then opens a new inbox and a new consumer that
/// carry a whole request and reply.
pub async fn lost_connections_are_reported(factory: &dyn TransportFactory) {
    let queue = queue(factory, "lost").await;
    let connection = connect(factory).await;
    let inbox = open_inbox(&connection).await;
    let old_address = inbox.address().to_owned();
    let stream = consume(&connection, &queue, 1).await;
    // Both are waiting when the connection goes, as the protocol's reply and consume loops
    // always are.
    let inbox_waits = tokio::spawn(async move {
        let mut inbox = inbox;
        let outcome = inbox.next_reply().await;
        (inbox, outcome)
    });
    let stream_waits = tokio::spawn(async move {
        let mut stream = stream;
        let outcome = stream.next_request().await;
        (stream, outcome)
    });
    if !factory.sever_connections().await {
        eprintln!(
            "skipping lost_connections_are_reported: this adapter's factory cannot sever \
             connections"
        );
        inbox_waits.abort();
        stream_waits.abort();
        factory.delete_queue(&queue).await;
        return;
    }
    let (mut inbox, lost) = within("the inbox to report the loss", inbox_waits)
        .await
        .expect("the inbox task failed");
    assert!(
        matches!(lost, Err(TransportError::Disconnected { .. })),
        "the inbox: {lost:?}"
    );
    let (mut stream, lost) = within("the stream to report the loss", stream_waits)
        .await
        .expect("the stream task failed");
    assert!(
        matches!(lost, Err(TransportError::Disconnected { .. })),
        "the stream: {lost:?}"
    );

    // A broker restart may take non-durable queues with it: declare it again.
    within("declaring the queue again", factory.declare_queue(&queue))
        .await
        .expect("cannot declare the queue again");
    let mut new_inbox = open_inbox(&connection).await;
    let mut new_stream = consume(&connection, &queue, 1).await;

    // Whatever the broker does with the old address now, the ended inbox gives nothing.
    let _ = within(
        "send_reply to the old address",
        connection
            .replies
            .send_reply(&old_address, request("stale")),
    )
    .await;
    let ended = within("the ended inbox", inbox.next_reply()).await;
    assert!(ended.is_err(), "an ended inbox gave a reply: {ended:?}");
    let ended = within("the ended stream", stream.next_request()).await;
    assert!(ended.is_err(), "an ended stream gave a request: {ended:?}");

    let call = Envelope {
        reply_to: Some(new_inbox.address().to_owned()),
        ..request("after")
    };
    send(&connection, &queue, call).await;
    let got = next(&mut new_stream).await;
    let reply_to = got.envelope.reply_to.clone().expect("reply_to was lost");
    reply(&connection, &reply_to, request("back")).await;
    settle(got.ack()).await;
    assert_eq!(next_reply(&mut new_inbox).await.body, b"back");
    factory.delete_queue(&queue).await;
}
