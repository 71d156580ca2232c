//! The request queue as the server finds it, against a real RabbitMQ: an existing queue of any
//! kind is consumed as it is; a missing one is declared as the spec says; servers racing to
//! declare it all succeed; a delivery limit sets aside a request that keeps coming back.

mod common;

use common::*;
use fibrpc_amqp::{AmqpConfig, AmqpTransport, QueueKind, ReplyQueueMode, RequestQueueSpec};
use fibrpc_ports::QueueAdmin;
use fibrpc_ports::{ReplyTransport, RequestTransport};
use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Connection, ConnectionProperties};

/// Another program on the broker, speaking AMQP with no fibrpc in between.
struct Foreign {
    connection: Connection,
}

impl Foreign {
    async fn open(url: &str) -> Self {
        let connection = Connection::connect(url, ConnectionProperties::default())
            .await
            .expect("a foreign connection");
        Self { connection }
    }

    /// Declares `queue` durable (or not) with `arguments`, on a channel of its own.
    async fn declare(
        &self,
        queue: &str,
        durable: bool,
        arguments: &[(&str, AMQPValue)],
    ) -> Result<(), lapin::Error> {
        let channel = self.connection.create_channel().await?;
        let mut table = FieldTable::default();
        for (key, value) in arguments {
            table.insert((*key).into(), value.clone());
        }
        let options = QueueDeclareOptions {
            durable,
            ..Default::default()
        };
        channel.queue_declare(queue.into(), options, table).await?;
        let _ = channel.close(200, "done".into()).await;
        Ok(())
    }
}

/// Queue arguments, as a declare carries them.
type Arguments = Vec<(&'static str, AMQPValue)>;

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(value.into())
}

fn quorum() -> (&'static str, AMQPValue) {
    ("x-queue-type", text("quorum"))
}

async fn connect_with(url: &str, request_queue: RequestQueueSpec) -> AmqpTransport {
    AmqpTransport::connect(AmqpConfig {
        request_queue,
        ..config(url, ReplyQueueMode::Exclusive)
    })
    .await
    .expect("connect")
}

fn quorum_spec() -> RequestQueueSpec {
    RequestQueueSpec {
        kind: QueueKind::Quorum,
        ..RequestQueueSpec::default()
    }
}

/// One request through `queue` and back out of the server side: the queue is usable.
async fn serves(transport: &AmqpTransport, queue: &str) {
    let mut requests = transport.consume_requests(queue, 4).await.unwrap();
    transport.send_request(queue, request("7")).await.unwrap();
    let taken = next(&mut requests).await;
    assert_eq!(taken.envelope.body, b"7");
    taken.ack().await.unwrap();
}

#[tokio::test]
async fn an_existing_queue_is_consumed_as_it_is_whatever_its_kind_and_arguments() {
    let Some(url) = broker_url().await else {
        return;
    };
    let foreign = Foreign::open(&url).await;
    // A server with the default spec (the tutorial's classic queue) meets each of these.
    let kinds: [(&str, bool, Arguments); 4] = [
        ("durable-classic", true, vec![]),
        ("quorum", true, vec![quorum()]),
        (
            "quorum-with-limits",
            true,
            vec![
                quorum(),
                ("x-delivery-limit", AMQPValue::LongLongInt(5)),
                ("x-dead-letter-exchange", text("somewhere")),
                ("x-max-length", AMQPValue::LongLongInt(10_000)),
                ("x-message-ttl", AMQPValue::LongLongInt(600_000)),
            ],
        ),
        (
            "classic-with-length",
            false,
            vec![("x-max-length", AMQPValue::LongLongInt(10_000))],
        ),
    ];
    let transport = connect(&url).await;
    for (kind, durable, arguments) in kinds {
        let queue = unique(&format!("fibrpc-amqp-test-{kind}"));
        foreign.declare(&queue, durable, &arguments).await.unwrap();
        transport.declare_request_queue(&queue).await.unwrap();
        serves(&transport, &queue).await;
        delete(&transport, &queue).await;
    }
}

#[tokio::test]
async fn a_missing_queue_is_declared_as_the_spec_says() {
    let Some(url) = broker_url().await else {
        return;
    };
    let foreign = Foreign::open(&url).await;
    let spec = RequestQueueSpec {
        dead_letter_exchange: Some("fibrpc-amqp-test-dlx".into()),
        delivery_limit: Some(4),
        ..quorum_spec()
    };
    let transport = connect_with(&url, spec).await;
    let queue = unique("fibrpc-amqp-test-declared");
    transport.declare_request_queue(&queue).await.unwrap();
    // A declare with exactly these arguments is accepted (RabbitMQ refuses any other) ...
    let same = [
        quorum(),
        ("x-dead-letter-exchange", text("fibrpc-amqp-test-dlx")),
        ("x-delivery-limit", AMQPValue::LongLongInt(4)),
    ];
    foreign.declare(&queue, true, &same).await.unwrap();
    // ... and the tutorial's classic declare is not: it is a quorum queue.
    let classic = foreign.declare(&queue, false, &[]).await;
    assert!(classic.is_err(), "a classic declare was accepted");
    delete(&transport, &queue).await;

    // A durable classic queue takes the tutorial's arguments plus durability.
    let durable = connect_with(
        &url,
        RequestQueueSpec {
            durable: true,
            ..RequestQueueSpec::default()
        },
    )
    .await;
    let queue = unique("fibrpc-amqp-test-durable");
    durable.declare_request_queue(&queue).await.unwrap();
    foreign.declare(&queue, true, &[]).await.unwrap();
    delete(&durable, &queue).await;
}

#[tokio::test]
async fn servers_racing_to_declare_a_missing_queue_differently_all_succeed() {
    let Some(url) = broker_url().await else {
        return;
    };
    let classic = connect(&url).await;
    let quorum = connect_with(&url, quorum_spec()).await;
    // The window is short: several rounds make it likely that one declare loses the race
    // (and, on RabbitMQ 3.10, that a consume meets a quorum queue whose replica is starting).
    for _ in 0..10 {
        let queue = unique("fibrpc-amqp-test-race");
        let (one, other) = tokio::join!(
            classic.consume_requests(&queue, 1),
            quorum.consume_requests(&queue, 1),
        );
        assert!(one.is_ok(), "{:?}", one.err());
        assert!(other.is_ok(), "{:?}", other.err());
        delete(&classic, &queue).await;
    }
}

#[tokio::test]
async fn an_invalid_spec_is_refused_before_the_broker_sees_it() {
    let Some(url) = broker_url().await else {
        return;
    };
    let transport = connect_with(
        &url,
        RequestQueueSpec {
            delivery_limit: Some(3),
            ..RequestQueueSpec::default()
        },
    )
    .await;
    let queue = unique("fibrpc-amqp-test-invalid");
    let refused = transport.declare_request_queue(&queue).await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("delivery limit needs a quorum queue"),
        "{refused}"
    );
    // Nothing was declared.
    assert!(transport.queue_depth(&queue).await.is_err());
}

#[tokio::test]
async fn a_request_given_back_past_the_delivery_limit_is_set_aside() {
    let Some(url) = broker_url().await else {
        return;
    };
    let limit = 2;
    // Without a dead-letter exchange the broker drops it (`fibrpc --test queues` follows one
    // into a dead-letter queue).
    let transport = connect_with(
        &url,
        RequestQueueSpec {
            delivery_limit: Some(limit),
            ..quorum_spec()
        },
    )
    .await;
    let queue = unique("fibrpc-amqp-test-poison");
    let mut requests = transport.consume_requests(&queue, 1).await.unwrap();
    transport
        .send_request(&queue, request("poison"))
        .await
        .unwrap();
    // A server that fails on it every time and gives it back: it comes back `limit` times,
    // then the broker sets it aside.
    for delivery in 0..=limit {
        let taken = next(&mut requests).await;
        assert_eq!(taken.envelope.body, b"poison");
        assert_eq!(taken.redelivered, delivery > 0);
        taken.reject(true).await.unwrap();
    }
    assert!(stays_quiet(&mut requests).await, "delivered past the limit");
    assert_eq!(transport.queue_depth(&queue).await.unwrap(), 0);
    delete(&transport, &queue).await;
}
