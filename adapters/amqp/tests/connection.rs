//! Connecting, failing to connect, and losing the connection, against a real RabbitMQ.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fibrpc_amqp::{AmqpConfig, AmqpTransport, ReplyQueueMode};
use fibrpc_ports::QueueAdmin;
use fibrpc_ports::{Envelope, ReplyTransport, RequestTransport, TransportError};
use fibrpc_test_support::rabbitmq::{have_rabbitmqctl, sever_connections_named};

const SECRET: &str = "s3cret-pw";

#[tokio::test]
async fn an_unreachable_broker_fails_in_time_without_the_password() {
    let config = AmqpConfig {
        url: format!("amqp://guest:{SECRET}@127.0.0.1:1/%2f"),
        connect_timeout: Duration::from_secs(2),
        ..AmqpConfig::default()
    };
    let shown = format!("{config:?}");
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(4), AmqpTransport::connect(config))
        .await
        .expect("connect gave up in time")
        .err()
        .expect("nothing listens on port 1");
    assert!(started.elapsed() < Duration::from_secs(3));
    let TransportError::Unreachable { address, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(address, "amqp://guest:***@127.0.0.1:1/%2f");
    for text in [error.to_string(), format!("{error:?}"), shown] {
        assert!(!text.contains(SECRET), "{text}");
    }
}

/// An address list whose first entry refuses (nothing listens on port 1) connects to the
/// next, inheriting the first entry's credentials and vhost for a `host:port` entry.
#[tokio::test]
async fn a_list_whose_first_address_refuses_connects_to_the_next() {
    let Some(url) = broker_url().await else {
        return;
    };
    let Some((_, host_and_path)) = url.split_once('@') else {
        eprintln!(
            "skipping: {} has no credentials",
            fibrpc_amqp::redact_url(&url)
        );
        return;
    };
    let host_port = host_and_path.split('/').next().unwrap_or(host_and_path);
    let (user_and_password, _) = url.split_once('@').expect("credentials");
    let first = format!("{user_and_password}@127.0.0.1:1/%2f");
    let config = AmqpConfig {
        url: format!("{first},{host_port}"),
        ..config(&url, ReplyQueueMode::Exclusive)
    };
    let transport = within("the second address", AmqpTransport::connect(config))
        .await
        .expect("the second address answers");
    let connected = transport.connected_address().expect("connected");
    assert!(connected.contains(host_port), "{connected}");
    assert!(!connected.contains(":1/"), "{connected}");

    // The transport works there: a round trip through its own reply queue.
    let mut inbox = transport.open_reply_inbox().await.unwrap();
    let address = inbox.address().to_owned();
    transport
        .send_reply(&address, Envelope::with_body("through the second"))
        .await
        .unwrap();
    let reply = within("the reply", inbox.next_reply()).await.unwrap();
    assert_eq!(reply.body, b"through the second");
}

/// When no address of the list answers, the error names each one and why, in the order
/// tried, without the password, after at most one connect timeout per address.
#[tokio::test]
async fn a_list_where_nothing_answers_names_every_address() {
    let config = AmqpConfig {
        url: format!("amqp://guest:{SECRET}@127.0.0.1:1/%2f,127.0.0.1:2,amqp://guest:{SECRET}@127.0.0.1:3/%2f"),
        connect_timeout: Duration::from_secs(2),
        ..AmqpConfig::default()
    };
    let error = tokio::time::timeout(Duration::from_secs(8), AmqpTransport::connect(config))
        .await
        .expect("connect gave up in time")
        .err()
        .expect("nothing listens on ports 1 to 3");
    let TransportError::Unreachable { address, reason } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(
        address,
        "amqp://guest:***@127.0.0.1:1/%2f, amqp://guest:***@127.0.0.1:2/%2f, amqp://guest:***@127.0.0.1:3/%2f"
    );
    for port in 1..=3 {
        assert!(reason.contains(&format!("127.0.0.1:{port}: ")), "{reason}");
    }
    assert!(!format!("{error} {error:?}").contains(SECRET), "{error:?}");
}

/// A list mixing vhosts is refused before any connection, with a one-line reason.
#[tokio::test]
async fn an_inconsistent_list_is_refused_at_once() {
    let config = AmqpConfig {
        url: format!(
            "amqp://guest:{SECRET}@127.0.0.1:5672/%2f,amqp://guest:{SECRET}@127.0.0.1:5673/other"
        ),
        ..AmqpConfig::default()
    };
    let error = within("the refusal", AmqpTransport::connect(config))
        .await
        .err()
        .expect("an inconsistent list");
    let shown = error.to_string();
    assert!(shown.contains("vhost") && !shown.contains('\n'), "{shown}");
    assert!(!format!("{shown} {error:?}").contains(SECRET), "{error:?}");
}

#[tokio::test]
async fn a_wrong_password_is_a_refused_login_without_the_password() {
    let Some(url) = broker_url().await else {
        return;
    };
    let Some((_, host)) = url.rsplit_once('@') else {
        eprintln!(
            "skipping: {} has no credentials",
            fibrpc_amqp::redact_url(&url)
        );
        return;
    };
    let config = AmqpConfig {
        url: format!("amqp://guest:{SECRET}@{host}"),
        ..AmqpConfig::default()
    };
    let error = within("the refusal", AmqpTransport::connect(config))
        .await
        .err()
        .expect("a wrong password to be refused");
    assert!(
        matches!(error, TransportError::AccessRefused { .. }),
        "{error:?}"
    );
    assert!(!format!("{error} {error:?}").contains(SECRET), "{error:?}");
}

/// Severs this test's own connections (found by their connection name) and checks that the
/// inbox and the request stream report it at once, and that the transport then reconnects.
#[tokio::test]
async fn a_lost_connection_is_reported_promptly_and_replaced() {
    let Some(url) = broker_url().await else {
        return;
    };
    if !have_rabbitmqctl() {
        eprintln!("skipping: rabbitmqctl is not available to close connections");
        return;
    }
    let config = config(&url, ReplyQueueMode::Exclusive);
    let name = config.connection_name.clone().expect("a connection name");
    let transport = AmqpTransport::connect(config).await.unwrap();
    let admin = connect(&url).await;
    let queue = unique("fibrpc-amqp-test-severed");
    let mut inbox = transport.open_reply_inbox().await.unwrap();
    let mut requests = transport.consume_requests(&queue, 1).await.unwrap();

    let severed = sever_connections_named(&name).await.unwrap();
    assert_eq!(severed, 1, "exactly this transport's connection");
    let lost = within("the inbox to notice", inbox.next_reply()).await;
    assert!(lost.unwrap_err().is_disconnection());
    let lost = within("the stream to notice", requests.next_request()).await;
    assert!(lost.unwrap_err().is_disconnection());

    // The next operation opens a new connection; a new inbox and stream work.
    let mut inbox = within("a new inbox", transport.open_reply_inbox())
        .await
        .unwrap();
    let mut requests = transport.consume_requests(&queue, 1).await.unwrap();
    let call = Envelope {
        reply_to: Some(inbox.address().to_owned()),
        ..request("after")
    };
    transport.send_request(&queue, call).await.unwrap();
    let got = next(&mut requests).await;
    let reply_to = got.envelope.reply_to.clone().unwrap();
    transport
        .send_reply(&reply_to, Envelope::with_body("answer"))
        .await
        .unwrap();
    got.ack().await.unwrap();
    let answer = within("the reply", inbox.next_reply()).await.unwrap();
    assert_eq!(answer.body, b"answer");
    delete(&admin, &queue).await;
}

/// Direct reply-to: the inbox lives on its own channel, so it must notice the loss too, and a
/// request naming the old inbox must fail rather than break the shared publishing channel.
#[tokio::test]
async fn a_direct_reply_to_inbox_notices_a_lost_connection() {
    let Some(url) = broker_url().await else {
        return;
    };
    if !have_rabbitmqctl() {
        eprintln!("skipping: rabbitmqctl is not available to close connections");
        return;
    }
    let config = config(&url, ReplyQueueMode::Direct);
    let name = config.connection_name.clone().expect("a connection name");
    let transport = AmqpTransport::connect(config).await.unwrap();
    let server = connect(&url).await;
    let queue = unique("fibrpc-amqp-test-direct");
    server.declare_request_queue(&queue).await.unwrap();
    let mut inbox = transport.open_reply_inbox().await.unwrap();
    let address = inbox.address().to_owned();

    assert_eq!(sever_connections_named(&name).await.unwrap(), 1);
    let lost = within("the inbox to notice", inbox.next_reply()).await;
    assert!(lost.unwrap_err().is_disconnection());
    let stale = Envelope {
        reply_to: Some(address),
        ..request("stale")
    };
    let refused = transport.send_request(&queue, stale).await;
    assert!(refused.unwrap_err().is_disconnection());

    // Requests without a reply address and a new inbox work on the new connection.
    transport
        .send_request(&queue, request("plain"))
        .await
        .unwrap();
    let mut inbox = transport.open_reply_inbox().await.unwrap();
    let mut requests = server.consume_requests(&queue, 2).await.unwrap();
    let call = Envelope {
        reply_to: Some(inbox.address().to_owned()),
        ..request("fresh")
    };
    transport.send_request(&queue, call).await.unwrap();
    for _ in 0..2 {
        let got = next(&mut requests).await;
        if let Some(reply_to) = &got.envelope.reply_to {
            server
                .send_reply(reply_to, Envelope::with_body("answer"))
                .await
                .unwrap();
        }
        got.ack().await.unwrap();
    }
    let answer = within("the reply", inbox.next_reply()).await.unwrap();
    assert_eq!(answer.body, b"answer");
    delete(&server, &queue).await;
}
