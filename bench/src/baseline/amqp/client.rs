//! The bare client: requests published to the default exchange with `reply_to` and
//! `correlation_id`, replies consumed from one exclusive queue and handed to their callers.
//!
//! Reply routing must not be what limits the client, so a correlation id is the index of a
//! slot in a fixed table plus a generation (`"17.4052"`): routing a reply is a parse and one
//! uncontended lock, with no hashing and no lock shared by all calls. The generation tells a
//! late reply to a slot since reused from the reply its current caller waits for.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use fibrpc_ports::TransportError;
use futures_util::StreamExt;
use lapin::options::{BasicConsumeOptions, BasicPublishOptions, QueueDeclareOptions};
use lapin::types::{FieldTable, ShortString};
use lapin::{BasicProperties, Channel, Connection, Consumer};
use tokio::sync::{oneshot, Semaphore};
use tokio::task::JoinHandle;

use super::translate;

/// How long a call waits for its reply.
const CALL_LIMIT: Duration = Duration::from_secs(30);

/// A client with its own connection. Cheap to clone; clones share the connection and the
/// reply queue.
#[derive(Clone)]
pub struct BareClient {
    inner: Arc<Inner>,
}

struct Inner {
    /// Taken when the last clone goes, to close it.
    connection: Option<Connection>,
    channel: Channel,
    queue: ShortString,
    reply_queue: ShortString,
    routes: Arc<Routes>,
    router: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.router.abort();
        // Closing is asynchronous; the broker drops the exclusive reply queue with the
        // connection either way.
        let Some(connection) = self.connection.take() else {
            return;
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = connection.close(200, "done".into()).await;
            });
        }
    }
}

impl BareClient {
    /// Connects, opens the reply queue and starts routing replies; `max_in_flight` calls can
    /// wait for their reply at once, further callers wait for a free slot.
    ///
    /// # Errors
    /// `Unreachable` when the broker cannot be reached; the translated broker error when the
    /// reply queue cannot be made.
    pub async fn connect(
        url: &str,
        queue: &str,
        max_in_flight: usize,
    ) -> Result<Self, TransportError> {
        let name = format!("fibrpc bare client {}", std::process::id());
        let connection = super::connect(url, &name).await?;
        let channel = connection
            .create_channel()
            .await
            .map_err(|error| translate(&error, queue))?;
        let reply_queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|error| translate(&error, "<reply queue>"))?
            .name()
            .clone();
        let replies = channel
            .basic_consume(
                reply_queue.clone(),
                "".into(),
                BasicConsumeOptions {
                    no_ack: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await
            .map_err(|error| translate(&error, reply_queue.as_str()))?;
        let routes = Arc::new(Routes::new(max_in_flight.max(1)));
        let router = tokio::spawn(route(replies, routes.clone()));
        Ok(Self {
            inner: Arc::new(Inner {
                connection: Some(connection),
                channel,
                queue: queue.into(),
                reply_queue,
                routes,
                router,
            }),
        })
    }
}

#[async_trait]
impl crate::baseline::BareCall for BareClient {
    /// Sends `body` and returns the reply's body.
    ///
    /// # Errors
    /// `Disconnected` when the publish fails or the reply consumer has ended; `Timeout` when
    /// no reply comes within 30 s (a request to a queue nobody consumes waits that long: no
    /// `mandatory` here).
    async fn call(&self, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        let inner = &*self.inner;
        let (ticket, reply) = inner.routes.register().await?;
        let properties = BasicProperties::default()
            .with_reply_to(inner.reply_queue.clone())
            .with_correlation_id(ticket.correlation_id());
        inner
            .channel
            .basic_publish(
                "".into(),
                inner.queue.clone(),
                BasicPublishOptions::default(),
                body,
                properties,
            )
            .await
            .map_err(|error| translate(&error, inner.queue.as_str()))?;
        match tokio::time::timeout(CALL_LIMIT, reply).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(_)) => Err(TransportError::disconnected("the reply consumer ended")),
            Err(_) => Err(TransportError::Timeout {
                operation: format!("waiting {CALL_LIMIT:?} for a bare reply"),
            }),
        }
    }
}

/// Hands each reply to the caller its correlation id names; replies nobody waits for (late,
/// or foreign) are dropped.
async fn route(mut replies: Consumer, routes: Arc<Routes>) {
    while let Some(Ok(delivery)) = replies.next().await {
        if let Some(id) = delivery.properties.correlation_id() {
            routes.deliver(id.as_str(), delivery.data);
        }
    }
    // The consumer ended: wake every waiting caller with an error.
    routes.close();
}

/// The callers waiting for replies, one slot each.
struct Routes {
    slots: Box<[Mutex<Slot>]>,
    free: Mutex<Vec<u32>>,
    /// One permit per free slot: callers beyond the table's size wait here.
    permits: Semaphore,
}

#[derive(Default)]
struct Slot {
    generation: u32,
    waiter: Option<oneshot::Sender<Vec<u8>>>,
}

/// A slot taken by a call, given back when the call ends however it ends.
struct Ticket<'a> {
    routes: &'a Routes,
    index: u32,
    generation: u32,
}

impl Ticket<'_> {
    fn correlation_id(&self) -> ShortString {
        format!("{}.{}", self.index, self.generation).into()
    }
}

impl Drop for Ticket<'_> {
    fn drop(&mut self) {
        let routes = self.routes;
        lock(&routes.slots[self.index as usize]).waiter = None;
        lock(&routes.free).push(self.index);
        routes.permits.add_permits(1);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Nothing panics while holding these locks; if something did, the data is still sound.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Routes {
    fn new(size: usize) -> Self {
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        Self {
            slots: (0..size).map(|_| Mutex::default()).collect(),
            free: Mutex::new((0..size).rev().collect()),
            permits: Semaphore::new(size as usize),
        }
    }

    async fn register(&self) -> Result<(Ticket<'_>, oneshot::Receiver<Vec<u8>>), TransportError> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| TransportError::disconnected("the reply consumer ended"))?;
        // The ticket gives the permit back when dropped.
        permit.forget();
        let index = lock(&self.free)
            .pop()
            .ok_or_else(|| TransportError::disconnected("no free reply slot"))?;
        let (sender, receiver) = oneshot::channel();
        let mut slot = lock(&self.slots[index as usize]);
        slot.generation = slot.generation.wrapping_add(1);
        slot.waiter = Some(sender);
        let generation = slot.generation;
        drop(slot);
        Ok((
            Ticket {
                routes: self,
                index,
                generation,
            },
            receiver,
        ))
    }

    fn deliver(&self, correlation_id: &str, body: Vec<u8>) {
        let Some((index, generation)) = parse(correlation_id) else {
            return;
        };
        let Some(slot) = self.slots.get(index as usize) else {
            return;
        };
        let mut slot = lock(slot);
        if slot.generation == generation {
            if let Some(waiter) = slot.waiter.take() {
                // The caller may have given up in the meantime; then nobody wants it.
                let _ = waiter.send(body);
            }
        }
    }

    /// Fails every waiting call and every later one.
    fn close(&self) {
        self.permits.close();
        for slot in self.slots.iter() {
            lock(slot).waiter = None;
        }
    }
}

fn parse(correlation_id: &str) -> Option<(u32, u32)> {
    let (index, generation) = correlation_id.split_once('.')?;
    Some((index.parse().ok()?, generation.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_reply_reaches_the_caller_its_id_names_and_only_that_one() {
        let routes = Routes::new(2);
        let (first, first_reply) = routes.register().await.unwrap();
        let (second, second_reply) = routes.register().await.unwrap();
        let second_id = second.correlation_id().to_string();
        routes.deliver(&second_id, b"two".to_vec());
        routes.deliver("garbage", b"x".to_vec());
        routes.deliver("7.1", b"x".to_vec());
        assert_eq!(second_reply.await.unwrap(), b"two");
        drop(second);
        // The slot comes back with a new generation: the old id no longer reaches it.
        let (third, mut third_reply) = routes.register().await.unwrap();
        assert_ne!(third.correlation_id().to_string(), second_id);
        routes.deliver(&second_id, b"late".to_vec());
        assert!(third_reply.try_recv().is_err());
        routes.deliver(first.correlation_id().as_str(), b"one".to_vec());
        assert_eq!(first_reply.await.unwrap(), b"one");
        drop(third);
    }

    #[tokio::test]
    async fn callers_beyond_the_table_wait_and_a_closed_table_fails_them() {
        let routes = Routes::new(1);
        let (held, _reply) = routes.register().await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(20), routes.register())
                .await
                .is_err(),
            "a second caller got a slot that was taken"
        );
        drop(held);
        let (again, waiting) = routes.register().await.unwrap();
        routes.close();
        assert!(waiting.await.is_err());
        drop(again);
        assert!(routes.register().await.is_err());
    }
}
