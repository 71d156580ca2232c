//! The broker seen from outside fibrpc: what an operator or another program does to it
//! (declaring queues with arguments, a dead-letter exchange), and what the tests read back
//! (counts of ready messages and consumers). Raw AMQP, on lapin.

use std::time::Instant;

use lapin::options::{
    BasicPublishOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use tokio::runtime::Runtime;

use super::LIMIT;

pub use lapin::types::AMQPValue as Value;

/// A queue argument of text.
pub fn text(value: &str) -> Value {
    AMQPValue::LongString(value.into())
}

/// A queue argument of a number.
pub fn number(value: i64) -> Value {
    AMQPValue::LongLongInt(value)
}

/// What a passive declare says of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub ready: u32,
    pub consumers: u32,
}

/// A connection of the test's own; deletes, when dropped, what was made through it.
pub struct Broker {
    runtime: Runtime,
    connection: Connection,
    queues: Vec<String>,
    exchanges: Vec<String>,
}

impl Broker {
    pub fn open() -> Self {
        let runtime = Runtime::new().expect("a runtime for the test's own AMQP client");
        let connection = runtime
            .block_on(Connection::connect(
                "amqp://127.0.0.1:5672/%2f",
                ConnectionProperties::default(),
            ))
            .expect("the test's own connection to RabbitMQ");
        Self {
            runtime,
            connection,
            queues: Vec::new(),
            exchanges: Vec::new(),
        }
    }

    /// Deletes `queue` when this is dropped (fibrpc or another program may declare it).
    pub fn clean_up(&mut self, queue: &str) {
        self.queues.push(queue.to_owned());
    }

    /// Declares `queue` as another program would, durable (or not) with `arguments`.
    pub fn declare(&mut self, queue: &str, durable: bool, arguments: &[(&str, Value)]) {
        self.clean_up(queue);
        let mut table = FieldTable::default();
        for (key, value) in arguments {
            table.insert((*key).into(), value.clone());
        }
        let options = QueueDeclareOptions {
            durable,
            ..Default::default()
        };
        self.runtime.block_on(async {
            let channel = self.connection.create_channel().await.unwrap();
            channel
                .queue_declare(queue.into(), options, table)
                .await
                .unwrap_or_else(|error| panic!("declaring {queue}: {error}"));
            let _ = channel.close(200, "done".into()).await;
        });
    }

    /// A fanout exchange and a classic queue bound to it: where dead letters are counted.
    pub fn dead_letter_target(&mut self, exchange: &str, queue: &str) {
        self.declare(queue, false, &[]);
        self.exchanges.push(exchange.to_owned());
        self.runtime.block_on(async {
            let channel = self.connection.create_channel().await.unwrap();
            channel
                .exchange_declare(
                    exchange.into(),
                    ExchangeKind::Fanout,
                    ExchangeDeclareOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            channel
                .queue_bind(
                    queue.into(),
                    exchange.into(),
                    "".into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                )
                .await
                .unwrap();
            let _ = channel.close(200, "done".into()).await;
        });
    }

    /// Publishes a request in the tutorial's decimal text, with no reply address.
    pub fn publish(&self, queue: &str, body: &str) {
        self.runtime.block_on(async {
            let channel = self.connection.create_channel().await.unwrap();
            channel
                .basic_publish(
                    "".into(),
                    queue.into(),
                    BasicPublishOptions::default(),
                    body.as_bytes(),
                    BasicProperties::default(),
                )
                .await
                .unwrap();
            let _ = channel.close(200, "done".into()).await;
        });
    }

    /// Whether `queue` exists (a passive declare, on a channel of its own).
    pub fn exists(&self, queue: &str) -> bool {
        self.runtime.block_on(async {
            let channel = self.connection.create_channel().await.unwrap();
            let options = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            channel
                .queue_declare(queue.into(), options, FieldTable::default())
                .await
                .is_ok()
        })
    }

    /// Ready messages and consumers of `queue`, which must exist.
    pub fn counts(&self, queue: &str) -> Counts {
        self.runtime.block_on(async {
            let channel = self.connection.create_channel().await.unwrap();
            let options = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            let declared = channel
                .queue_declare(queue.into(), options, FieldTable::default())
                .await
                .unwrap_or_else(|error| panic!("looking at {queue}: {error}"));
            let _ = channel.close(200, "done".into()).await;
            Counts {
                ready: declared.message_count(),
                consumers: declared.consumer_count(),
            }
        })
    }

    /// Waits, polling, until `queue` shows `expected`; fails the test after [`LIMIT`].
    pub fn wait_for(&self, queue: &str, expected: Counts) {
        let deadline = Instant::now() + LIMIT;
        loop {
            let counts = self.counts(queue);
            if counts == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{queue} shows {counts:?}, not {expected:?}, after {LIMIT:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.runtime.block_on(async {
            // A channel for each: a failed delete closes its channel.
            for queue in &self.queues {
                if let Ok(channel) = self.connection.create_channel().await {
                    let _ = channel
                        .queue_delete(queue.as_str().into(), Default::default())
                        .await;
                }
            }
            for exchange in &self.exchanges {
                if let Ok(channel) = self.connection.create_channel().await {
                    let _ = channel
                        .exchange_delete(exchange.as_str().into(), Default::default())
                        .await;
                }
            }
            let _ = self.connection.close(200, "test done".into()).await;
        });
    }
}
