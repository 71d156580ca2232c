//! The server side against a real RabbitMQ: prefetch, settling, redelivery and cancelling.

mod common;

use common::*;
use fibrpc_ports::QueueAdmin;
use fibrpc_ports::{ReplyTransport, RequestTransport, TransportError};

/// Declares a fresh request queue and puts `count` requests in it, bodies "0", "1", ...
async fn queue_with(transport: &fibrpc_amqp::AmqpTransport, count: usize) -> String {
    let queue = unique("fibrpc-amqp-test-server");
    transport.declare_request_queue(&queue).await.unwrap();
    for i in 0..count {
        transport
            .send_request(&queue, request(&i.to_string()))
            .await
            .unwrap();
    }
    queue
}

#[tokio::test]
async fn no_more_than_prefetch_requests_are_out_at_once() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let queue = queue_with(&transport, 5).await;
    let mut requests = transport.consume_requests(&queue, 2).await.unwrap();

    let first = next(&mut requests).await;
    let _second = next(&mut requests).await;
    assert!(
        stays_quiet(&mut requests).await,
        "a third request was handed out with two unsettled"
    );
    first.ack().await.unwrap();
    let third = next(&mut requests).await;
    assert_eq!(third.envelope.body, b"2");
    delete(&transport, &queue).await;
}

#[tokio::test]
async fn a_request_dropped_unsettled_is_delivered_again() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let queue = queue_with(&transport, 1).await;
    let mut requests = transport.consume_requests(&queue, 1).await.unwrap();

    let first = next(&mut requests).await;
    assert!(!first.redelivered);
    let id = first.envelope.correlation_id.clone();
    drop(first);
    let again = next(&mut requests).await;
    assert!(again.redelivered);
    assert_eq!(again.envelope.correlation_id, id);
    again.ack().await.unwrap();
    delete(&transport, &queue).await;
}

#[tokio::test]
async fn reject_with_requeue_delivers_again_and_without_discards() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let queue = queue_with(&transport, 1).await;
    let mut requests = transport.consume_requests(&queue, 1).await.unwrap();

    next(&mut requests).await.reject(true).await.unwrap();
    let again = next(&mut requests).await;
    assert!(again.redelivered);
    again.reject(false).await.unwrap();
    // The request after it comes next: the rejected one is gone.
    transport
        .send_request(&queue, request("after"))
        .await
        .unwrap();
    let after = next(&mut requests).await;
    assert_eq!(after.envelope.body, b"after");
    assert!(!after.redelivered);
    after.ack().await.unwrap();
    assert_eq!(transport.queue_depth(&queue).await.unwrap(), 0);
    delete(&transport, &queue).await;
}

#[tokio::test]
async fn cancel_gives_back_what_was_not_handed_out() {
    let Some(url) = broker_url().await else {
        return;
    };
    let (one, other) = (connect(&url).await, connect(&url).await);
    let queue = queue_with(&one, 3).await;
    // A prefetch of 5 lets the broker push all three to this consumer at once.
    let mut requests = one.consume_requests(&queue, 5).await.unwrap();
    let held = next(&mut requests).await;

    requests.cancel().await.unwrap();
    assert_eq!(
        within("next after cancel", requests.next_request())
            .await
            .unwrap_err(),
        TransportError::Cancelled
    );
    drop(requests);
    // Another consumer gets the two that were buffered but never handed out.
    let mut elsewhere = other.consume_requests(&queue, 5).await.unwrap();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let request = next(&mut elsewhere).await;
        bodies.push(request.envelope.body.clone());
        request.ack().await.unwrap();
    }
    bodies.sort();
    assert_eq!(bodies, [b"1".to_vec(), b"2".to_vec()]);
    // The request handed out before the cancel can still be acknowledged: its channel
    // stayed open although the stream is gone.
    held.ack().await.unwrap();
    assert!(stays_quiet(&mut elsewhere).await);
    delete(&one, &queue).await;
}

#[tokio::test]
async fn dropping_the_stream_gives_back_what_was_not_handed_out() {
    let Some(url) = broker_url().await else {
        return;
    };
    let (one, other) = (connect(&url).await, connect(&url).await);
    let queue = queue_with(&one, 2).await;
    let mut requests = one.consume_requests(&queue, 5).await.unwrap();
    let held = next(&mut requests).await;
    drop(requests);

    let mut elsewhere = other.consume_requests(&queue, 5).await.unwrap();
    let given_back = next(&mut elsewhere).await;
    assert_eq!(given_back.envelope.body, b"1");
    given_back.ack().await.unwrap();
    held.ack().await.unwrap();
    assert!(stays_quiet(&mut elsewhere).await);
    delete(&one, &queue).await;
}

#[tokio::test]
async fn a_deleted_queue_ends_the_stream_promptly() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let queue = queue_with(&transport, 0).await;
    let mut requests = transport.consume_requests(&queue, 1).await.unwrap();
    transport.delete_queue(&queue).await.unwrap();
    let error = within("the stream to end", requests.next_request())
        .await
        .unwrap_err();
    assert!(error.is_disconnection(), "{error:?}");
    // Ended for good.
    let again = within("the stream to stay ended", requests.next_request()).await;
    assert!(again.unwrap_err().is_disconnection());
}

#[tokio::test]
async fn a_deleted_reply_queue_ends_the_inbox_promptly() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let mut inbox = transport.open_reply_inbox().await.unwrap();
    transport.delete_queue(inbox.address()).await.unwrap();
    let error = within("the inbox to end", inbox.next_reply())
        .await
        .unwrap_err();
    assert!(error.is_disconnection(), "{error:?}");
}

#[tokio::test]
async fn a_refused_look_at_the_queue_harms_nothing_else() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let mut inbox = transport.open_reply_inbox().await.unwrap();
    // Another connection's exclusive queue: even a passive declare is refused (RESOURCE_LOCKED).
    let other = connect(&url).await;
    let other_inbox = other.open_reply_inbox().await.unwrap();
    let refused = transport
        .consume_requests(other_inbox.address(), 1)
        .await
        .err()
        .expect("a locked queue to be refused");
    assert!(
        matches!(refused, TransportError::Refused { .. }),
        "{refused:?}"
    );
    // The connection and its reply inbox live on.
    let address = inbox.address().to_owned();
    transport
        .send_reply(&address, fibrpc_ports::Envelope::with_body("still here"))
        .await
        .unwrap();
    assert_eq!(
        within("the reply", inbox.next_reply()).await.unwrap().body,
        b"still here"
    );
}
