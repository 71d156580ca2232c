//! The client side against a real RabbitMQ: requests carry their fields, replies reach both
//! kinds of inbox, unroutable messages fail at once, deadlines become expirations.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fibrpc_amqp::{AmqpTransport, ReplyQueueMode};
use fibrpc_ports::QueueAdmin;
use fibrpc_ports::{Envelope, ReplyTransport, RequestTransport, TransportError};

#[tokio::test]
async fn a_request_carries_every_envelope_field() {
    let Some(url) = broker_url().await else {
        return;
    };
    let (client, server) = (connect(&url).await, connect(&url).await);
    let queue = unique("fibrpc-amqp-test-fields");
    let mut requests = server.consume_requests(&queue, 10).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    let sent = Envelope {
        correlation_id: Some("corr-42".into()),
        reply_to: Some("some-reply-queue".into()),
        content_type: Some("application/x-test".into()),
        procedure: Some("test.procedure".into()),
        deadline: Some(deadline),
        body: vec![0, 1, 2, 255],
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
        error: None,
        reads_batches: true,
    };
    client.send_request(&queue, sent.clone()).await.unwrap();
    let got = next(&mut requests).await;

    assert!(!got.redelivered);
    let envelope = &got.envelope;
    assert_eq!(envelope.correlation_id, sent.correlation_id);
    assert_eq!(envelope.reply_to, sent.reply_to);
    assert_eq!(envelope.content_type, sent.content_type);
    assert_eq!(envelope.procedure, sent.procedure);
    assert_eq!(envelope.traceparent, sent.traceparent);
    assert!(envelope.reads_batches);
    assert_eq!(envelope.body, sent.body);
    // Rebuilt from `expiration` on arrival: close to the caller's, never later.
    let rebuilt = envelope.deadline.expect("a deadline from the expiration");
    assert!(rebuilt <= deadline + Duration::from_millis(5));
    assert!(rebuilt > deadline - Duration::from_secs(2));
    got.ack().await.unwrap();
    delete(&server, &queue).await;
}

#[tokio::test]
async fn absent_fields_stay_absent() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let queue = unique("fibrpc-amqp-test-bare");
    let mut requests = transport.consume_requests(&queue, 1).await.unwrap();
    // As a client in another language may send it: no correlation id, no content type.
    transport
        .send_request(&queue, Envelope::with_body("30"))
        .await
        .unwrap();
    let got = next(&mut requests).await;
    assert_eq!(got.envelope, Envelope::with_body("30"));
    got.ack().await.unwrap();
    delete(&transport, &queue).await;
}

/// The tutorial's round trip: request with `reply_to` = the inbox, reply to that address.
async fn round_trip(client: &AmqpTransport, server: &AmqpTransport, expected_address: &str) {
    let queue = unique("fibrpc-amqp-test-rpc");
    let mut requests = server.consume_requests(&queue, 1).await.unwrap();
    let mut inbox = client.open_reply_inbox().await.unwrap();
    assert!(
        inbox.address().starts_with(expected_address),
        "{}",
        inbox.address()
    );

    let call = Envelope {
        reply_to: Some(inbox.address().to_owned()),
        ..request("30")
    };
    client.send_request(&queue, call.clone()).await.unwrap();
    let got = next(&mut requests).await;
    let reply_to = got.envelope.reply_to.clone().expect("reply_to");
    let reply = Envelope {
        correlation_id: got.envelope.correlation_id.clone(),
        content_type: Some("text/plain".into()),
        ..Envelope::with_body("832040")
    };
    server.send_reply(&reply_to, reply.clone()).await.unwrap();
    got.ack().await.unwrap();

    let answer = within("the reply", inbox.next_reply()).await.unwrap();
    assert_eq!(answer.correlation_id, call.correlation_id);
    assert_eq!(answer.content_type, reply.content_type);
    assert_eq!(answer.body, reply.body);
    delete(server, &queue).await;
}

#[tokio::test]
async fn replies_reach_an_exclusive_reply_queue() {
    let Some(url) = broker_url().await else {
        return;
    };
    let (client, server) = (connect(&url).await, connect(&url).await);
    // Server-named, as in the tutorial.
    round_trip(&client, &server, "amq.gen-").await;
}

#[tokio::test]
async fn replies_reach_a_direct_reply_to_inbox() {
    let Some(url) = broker_url().await else {
        return;
    };
    let client = AmqpTransport::connect(config(&url, ReplyQueueMode::Direct))
        .await
        .unwrap();
    let server = connect(&url).await;
    round_trip(&client, &server, "amq.rabbitmq.reply-to").await;
}

#[tokio::test]
async fn a_reply_sent_right_after_opening_the_inbox_is_not_lost() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let mut inbox = transport.open_reply_inbox().await.unwrap();
    let address = inbox.address().to_owned();
    transport
        .send_reply(&address, Envelope::with_body("early"))
        .await
        .unwrap();
    let reply = within("the reply", inbox.next_reply()).await.unwrap();
    assert_eq!(reply.body, b"early");
}

#[tokio::test]
async fn a_request_to_a_missing_queue_fails_at_once() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let queue = unique("fibrpc-amqp-test-missing");
    // A deadline far away: the failure must not come from it.
    let call = Envelope {
        deadline: Some(Instant::now() + Duration::from_secs(60)),
        ..request("1")
    };
    let started = Instant::now();
    let outcome = transport.send_request(&queue, call).await;
    let elapsed = started.elapsed();
    assert_eq!(outcome, Err(TransportError::NoSuchQueue { queue }));
    assert!(elapsed < Duration::from_millis(100), "took {elapsed:?}");
    // The shared publishing channel survives it.
    let queue = unique("fibrpc-amqp-test-after");
    transport.declare_request_queue(&queue).await.unwrap();
    transport.send_request(&queue, request("2")).await.unwrap();
    delete(&transport, &queue).await;
}

#[tokio::test]
async fn a_reply_to_a_missing_queue_is_no_such_queue() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let address = unique("fibrpc-amqp-test-gone");
    let outcome = transport
        .send_reply(&address, Envelope::with_body("late"))
        .await;
    assert_eq!(outcome, Err(TransportError::NoSuchQueue { queue: address }));
}

#[tokio::test]
async fn a_request_expires_at_its_deadline() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let queue = unique("fibrpc-amqp-test-expiry");
    transport.declare_request_queue(&queue).await.unwrap();
    let kept = unique("fibrpc-amqp-test-kept");
    transport.declare_request_queue(&kept).await.unwrap();

    let deadline = Instant::now() + Duration::from_millis(200);
    let call = Envelope {
        deadline: Some(deadline),
        ..request("1")
    };
    transport.send_request(&queue, call).await.unwrap();
    transport.send_request(&kept, request("1")).await.unwrap();
    // Confirmed means queued: it is there until its deadline...
    let depth = transport.queue_depth(&queue).await.unwrap();
    if Instant::now() < deadline {
        assert_eq!(depth, 1);
    }
    // ...and then the broker drops it, with nobody consuming.
    depth_reaches(&transport, &queue, 0).await;
    assert!(Instant::now() >= deadline - Duration::from_millis(20));
    // Without a deadline a request stays.
    assert_eq!(transport.queue_depth(&kept).await.unwrap(), 1);
    delete(&transport, &queue).await;
    delete(&transport, &kept).await;
}

#[tokio::test]
async fn concurrent_publishers_do_not_wait_for_each_other() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect(&url).await;
    let queue = unique("fibrpc-amqp-test-many");
    transport.declare_request_queue(&queue).await.unwrap();
    let mut publishers = tokio::task::JoinSet::new();
    for i in 0..200 {
        let (transport, queue) = (transport.clone(), queue.clone());
        publishers.spawn(async move {
            transport
                .send_request(&queue, request(&i.to_string()))
                .await
        });
    }
    let all = within("200 concurrent publishes", publishers.join_all()).await;
    assert!(all.iter().all(Result::is_ok), "{all:?}");
    depth_reaches(&transport, &queue, 200).await;
    delete(&transport, &queue).await;
}
