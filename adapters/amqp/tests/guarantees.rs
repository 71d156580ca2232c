//! Requests with guarantees turned off (`AmqpConfig::requests`): still delivered whole, and
//! losing exactly what the setting says.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fibrpc_amqp::{AmqpTransport, ReplyQueueMode, RequestGuarantees};
use fibrpc_ports::{Envelope, QueueAdmin, ReplyTransport, RequestTransport, TransportError};

async fn connect_with(url: &str, requests: RequestGuarantees) -> AmqpTransport {
    let config = fibrpc_amqp::AmqpConfig {
        requests,
        ..config(url, ReplyQueueMode::Exclusive)
    };
    AmqpTransport::connect(config).await.expect("connect")
}

fn far_deadline() -> Envelope {
    Envelope {
        deadline: Some(Instant::now() + Duration::from_secs(60)),
        ..request("1")
    }
}

#[tokio::test]
async fn without_confirms_a_request_arrives_whole() {
    let Some(url) = broker_url().await else {
        return;
    };
    let unconfirmed = RequestGuarantees {
        confirm: false,
        ..RequestGuarantees::default()
    };
    let (client, server) = (connect_with(&url, unconfirmed).await, connect(&url).await);
    let queue = unique("costs-amqp-test-unconfirmed");
    let mut requests = server.consume_requests(&queue, 10).await.unwrap();
    let sent = far_deadline();
    client.send_request(&queue, sent.clone()).await.unwrap();
    let got = next(&mut requests).await;
    assert_eq!(got.envelope.correlation_id, sent.correlation_id);
    assert_eq!(got.envelope.body, sent.body);
    assert!(got.envelope.deadline.is_some());
    got.ack().await.unwrap();
    delete(&server, &queue).await;
}

/// Without confirms lapin hands a returned request to nobody: `send_request` cannot tell,
/// and the call would end at its deadline. What comes back is drained, and the channel goes
/// on carrying requests.
#[tokio::test]
async fn without_confirms_returned_requests_are_drained_and_publishing_goes_on() {
    let Some(url) = broker_url().await else {
        return;
    };
    let unconfirmed = RequestGuarantees {
        confirm: false,
        ..RequestGuarantees::default()
    };
    let transport = connect_with(&url, unconfirmed).await;
    let missing = unique("costs-amqp-test-missing");
    for _ in 0..20 {
        let sent = transport.send_request(&missing, far_deadline()).await;
        assert_eq!(sent, Ok(()));
    }
    let queue = unique("costs-amqp-test-after-returns");
    let mut requests = transport.consume_requests(&queue, 10).await.unwrap();
    transport.send_request(&queue, request("2")).await.unwrap();
    next(&mut requests).await.ack().await.unwrap();
    delete(&transport, &queue).await;
}

/// With confirms but not `mandatory`, the broker confirms a request no queue took: lost.
#[tokio::test]
async fn without_mandatory_a_request_to_a_missing_queue_is_dropped() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect_with(
        &url,
        RequestGuarantees {
            mandatory: false,
            ..RequestGuarantees::default()
        },
    )
    .await;
    let missing = unique("costs-amqp-test-dropped");
    assert_eq!(
        transport.send_request(&missing, far_deadline()).await,
        Ok(())
    );
    // The default still fails it at once.
    let outcome = connect(&url)
        .await
        .send_request(&missing, far_deadline())
        .await;
    assert_eq!(outcome, Err(TransportError::NoSuchQueue { queue: missing }));
}

#[tokio::test]
async fn without_expiration_a_request_carries_no_deadline_and_stays() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect_with(
        &url,
        RequestGuarantees {
            expiration: false,
            ..RequestGuarantees::default()
        },
    )
    .await;
    let queue = unique("costs-amqp-test-no-expiry");
    transport.declare_request_queue(&queue).await.unwrap();
    let deadline = Instant::now() + Duration::from_millis(50);
    let call = Envelope {
        deadline: Some(deadline),
        ..request("1")
    };
    transport.send_request(&queue, call).await.unwrap();
    // Past its deadline the request is still there, and arrives without one.
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
    depth_reaches(&transport, &queue, 1).await;
    let mut requests = transport.consume_requests(&queue, 10).await.unwrap();
    let got = next(&mut requests).await;
    assert_eq!(got.envelope.deadline, None);
    got.ack().await.unwrap();
    delete(&transport, &queue).await;
}
