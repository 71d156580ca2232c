//! Shared by the broker tests: finding the broker, unique names, bounded waits.
#![allow(dead_code)] // each test binary uses its own part of it

use std::future::Future;
use std::time::Duration;

use fibrpc_amqp::{AmqpConfig, AmqpTransport, ReplyQueueMode};
use fibrpc_ports::QueueAdmin;
use fibrpc_ports::{Envelope, IncomingRequest, RequestStream};
pub use fibrpc_test_support::unique;

/// How long any single event may take before the test fails.
pub const EVENT: Duration = Duration::from_secs(5);
/// How long a test waits to be fairly sure something does NOT happen.
pub const QUIET: Duration = Duration::from_millis(300);

/// The broker under test (`AMQP_URL`, else the local default), or None after saying why the
/// test is skipped. With `CI=true` a missing broker fails the test instead.
pub async fn broker_url() -> Option<String> {
    let url = std::env::var("AMQP_URL")
        .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".to_owned());
    let config = AmqpConfig {
        url: url.clone(),
        connect_timeout: Duration::from_secs(3),
        ..AmqpConfig::default()
    };
    match AmqpTransport::connect(config).await {
        Ok(_) => Some(url),
        Err(error) => {
            let broker = format!("RabbitMQ at {}", fibrpc_amqp::redact_url(&url));
            fibrpc_test_support::skip_or_fail(&broker, error, "rabbitmq-server -detached");
            None
        }
    }
}

/// A config for `url` whose connections carry a name unique to this test, so that the test
/// can find (and sever) exactly its own connections.
pub fn config(url: &str, reply_queue: ReplyQueueMode) -> AmqpConfig {
    AmqpConfig {
        url: url.to_owned(),
        reply_queue,
        connection_name: Some(unique("fibrpc-amqp-test")),
        ..AmqpConfig::default()
    }
}

pub async fn connect(url: &str) -> AmqpTransport {
    AmqpTransport::connect(config(url, ReplyQueueMode::Exclusive))
        .await
        .expect("connect")
}

/// Fails the test if `event` does not happen within [`EVENT`].
pub async fn within<T>(what: &str, event: impl Future<Output = T>) -> T {
    fibrpc_test_support::within(EVENT, what, event).await
}

/// The next request, which must come within [`EVENT`].
pub async fn next(stream: &mut Box<dyn RequestStream>) -> IncomingRequest {
    within("a request", stream.next_request())
        .await
        .expect("next_request")
}

/// True if no request is handed out within [`QUIET`].
pub async fn stays_quiet(stream: &mut Box<dyn RequestStream>) -> bool {
    tokio::time::timeout(QUIET, stream.next_request())
        .await
        .is_err()
}

/// Waits, polling, until `queue` holds `expected` ready messages.
pub async fn depth_reaches(transport: &AmqpTransport, queue: &str, expected: u64) {
    within(&format!("{queue} to hold {expected} messages"), async {
        loop {
            if transport.queue_depth(queue).await.expect("queue depth") == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

pub fn request(body: &str) -> Envelope {
    Envelope {
        correlation_id: Some(uuid::Uuid::new_v4().to_string()),
        content_type: Some("text/plain".to_owned()),
        ..Envelope::with_body(body)
    }
}

pub async fn delete(transport: &AmqpTransport, queue: &str) {
    if let Err(error) = transport.delete_queue(queue).await {
        eprintln!("could not delete {queue}: {error}");
    }
}
