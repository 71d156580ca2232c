//! Expired requests, missing queues and lost connections.

use std::time::{Duration, Instant};

use fibrpc_ports::{Envelope, TransportError};

use super::*;

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
    // Where the broker keeps no queue, the request waits in the consumer's hands instead.
    let early = match factory.lacks(Guarantee::QueuedRequests) {
        Some(_) => Some(consume(&connection, &queue, 4).await),
        None => None,
    };
    send(&connection, &queue, expiring).await;
    send(&connection, &queue, request("on time")).await;
    // Not synchronisation: the passing of the deadline is what is under test.
    tokio::time::sleep_until((deadline + Duration::from_millis(50)).into()).await;
    let mut stream = match early {
        Some(stream) => stream,
        None => consume(&connection, &queue, 4).await,
    };
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
    crate::delete_queue(factory, &queue).await;
}

/// `send_request` MUST fail with `NoSuchQueue` "when no queue of that name exists, if the
/// broker can tell" (at once, not at a timeout), and a request's `reply` "when the address no
/// longer exists, if the broker can tell".
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
        let mut replier = Replier::open(factory, &connection).await;
        let outcome = replier.try_reply(&missing, request("x")).await;
        assert_eq!(outcome, Err(TransportError::NoSuchQueue { queue: missing }));
        replier.close(factory).await;
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
    if !crate::sever(factory, "lost_connections_are_reported").await {
        inbox_waits.abort();
        stream_waits.abort();
        crate::delete_queue(factory, &queue).await;
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
    within(
        "declaring the queue again",
        factory.admin().declare_request_queue(&queue),
    )
    .await
    .expect("cannot declare the queue again");
    let mut new_inbox = open_inbox(&connection).await;
    let mut new_stream = consume(&connection, &queue, 1).await;

    // Whatever the broker does with the old address now, the ended inbox gives nothing.
    let mut replier = Replier::open(factory, &connection).await;
    let _ = replier.try_reply(&old_address, request("stale")).await;
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
    answer(got, &reply_to, request("back")).await;
    assert_eq!(next_reply(&mut new_inbox).await.body, b"back");
    replier.close(factory).await;
    crate::delete_queue(factory, &queue).await;
}

/// `RequestStream::next_request`: a message it cannot read "MUST NOT end the stream, nor be
/// returned as an error ... The adapter MUST settle it so that it is not delivered again ...
/// and go on to the next request". A malformed message, then a request: the consumer gets the
/// request; nothing else, then or later, nor does a new consumer.
pub async fn malformed_messages_are_settled_and_skipped(factory: &dyn TransportFactory) {
    let queue = queue(factory, "malformed").await;
    let connection = connect(factory).await;
    // Where the broker keeps no queue, the consumer takes both as they come, in either order.
    let early = match factory.lacks(Guarantee::QueuedRequests) {
        Some(_) => Some(consume(&connection, &queue, 4).await),
        None => None,
    };
    let sent = within(
        "sending a malformed message",
        factory.send_malformed(&queue),
    )
    .await;
    if !sent {
        eprintln!(
            "skipping malformed_messages_are_settled_and_skipped: every message this \
             adapter's broker holds reads as an envelope"
        );
        crate::delete_queue(factory, &queue).await;
        return;
    }
    send(&connection, &queue, request("after")).await;
    let mut stream = match early {
        Some(stream) => stream,
        None => consume(&connection, &queue, 4).await,
    };
    let got = next(&mut stream).await;
    assert_eq!(
        got.envelope.body, b"after",
        "the malformed message was handed out"
    );
    settle(got.ack()).await;
    nothing_more(&mut stream, "the malformed message was handed out").await;
    within("cancel", stream.cancel())
        .await
        .expect("cancel failed");
    // Past the redelivery time: a malformed message left unsettled would come back then.
    let mut again = consume(&connection, &queue, 4).await;
    nothing_comes_back(factory, &mut again, "the malformed message came back").await;
    crate::delete_queue(factory, &queue).await;
}
