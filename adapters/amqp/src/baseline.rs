//! A bare request/reply over RabbitMQ with lapin alone, the way the tutorial does it: the
//! ceiling fibrpc's AMQP transport is measured against (`fibrpc bench --baseline`).
//!
//! No fibrpc layer: the echo server republishes each body to `reply_to` with the request's
//! `correlation_id` and acknowledges; the client matches replies by correlation id. No
//! publisher confirms and no `mandatory`, as in the tutorial.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use tokio::sync::oneshot;

/// Latencies of every round trip and the wall time of the whole run.
#[derive(Debug, Clone)]
pub struct BareRun {
    pub latencies: Vec<Duration>,
    pub elapsed: Duration,
}

type Replies = Arc<Mutex<HashMap<String, oneshot::Sender<()>>>>;

/// Runs `calls` round trips with `concurrency` in flight through a fresh queue `queue`.
pub async fn bare_round_trips(
    url: &str,
    queue: &str,
    calls: u64,
    concurrency: usize,
    body: Vec<u8>,
) -> Result<BareRun, lapin::Error> {
    let server = Connection::connect(url, ConnectionProperties::default()).await?;
    let client = Connection::connect(url, ConnectionProperties::default()).await?;
    let serving = server.create_channel().await?;
    serving
        .queue_declare(
            queue.into(),
            QueueDeclareOptions::default(),
            FieldTable::default(),
        )
        .await?;
    serving
        .basic_qos(
            concurrency.min(u16::MAX as usize) as u16,
            BasicQosOptions::default(),
        )
        .await?;
    let mut requests = serving
        .basic_consume(
            queue.into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let echo = tokio::spawn(async move {
        while let Some(Ok(delivery)) = requests.next().await {
            let Some(reply_to) = delivery.properties.reply_to().clone() else {
                continue;
            };
            let mut properties = BasicProperties::default();
            if let Some(id) = delivery.properties.correlation_id().clone() {
                properties = properties.with_correlation_id(id);
            }
            let published = serving
                .basic_publish(
                    "".into(),
                    reply_to,
                    BasicPublishOptions::default(),
                    &delivery.data,
                    properties,
                )
                .await;
            if published.is_err() {
                break;
            }
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
        }
    });

    let calling = client.create_channel().await?;
    let reply_queue = calling
        .queue_declare(
            "".into(),
            QueueDeclareOptions {
                exclusive: true,
                auto_delete: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?
        .name()
        .clone();
    let mut replies = calling
        .basic_consume(
            reply_queue.clone(),
            "".into(),
            BasicConsumeOptions {
                no_ack: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await?;
    let waiting: Replies = Arc::default();
    let router = tokio::spawn({
        let waiting = waiting.clone();
        async move {
            while let Some(Ok(delivery)) = replies.next().await {
                let id = delivery
                    .properties
                    .correlation_id()
                    .as_ref()
                    .map(|id| id.to_string());
                let waiter = id.and_then(|id| waiting.lock().ok()?.remove(&id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(());
                }
            }
        }
    });

    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (channel, waiting, next, body, queue, reply_queue) = (
            calling.clone(),
            waiting.clone(),
            next.clone(),
            body.clone(),
            queue.to_owned(),
            reply_queue.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, Ordering::Relaxed) < calls {
                let id = uuid::Uuid::new_v4().to_string();
                let (reply, replied) = oneshot::channel();
                if let Ok(mut waiting) = waiting.lock() {
                    waiting.insert(id.clone(), reply);
                }
                let properties = BasicProperties::default()
                    .with_reply_to(reply_queue.clone())
                    .with_correlation_id(id.into());
                let began = Instant::now();
                channel
                    .basic_publish(
                        "".into(),
                        queue.as_str().into(),
                        BasicPublishOptions::default(),
                        &body,
                        properties,
                    )
                    .await?;
                if tokio::time::timeout(Duration::from_secs(30), replied)
                    .await
                    .is_err()
                {
                    break;
                }
                latencies.push(began.elapsed());
            }
            Ok::<_, lapin::Error>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        if let Ok(done) = worker.await {
            latencies.extend(done?);
        }
    }
    let elapsed = started.elapsed();
    router.abort();
    echo.abort();
    let _ = calling
        .queue_delete(queue.into(), QueueDeleteOptions::default())
        .await;
    let _ = client.close(200, "done".into()).await;
    let _ = server.close(200, "done".into()).await;
    Ok(BareRun { latencies, elapsed })
}
