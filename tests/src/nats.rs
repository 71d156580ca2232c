use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use fibrpc_conformance::{Connection, Guarantee, TransportFactory};
use fibrpc_nats::{NatsConfig, NatsMode, NatsTransport};
use fibrpc_ports::{QueueAdmin, TransportError};

/// The ack wait of the request consumers the tests create.
const ACK_WAIT: Duration = Duration::from_secs(2);

/// The local NATS server (JetStream on) under test, in one of the adapter's modes.
pub struct NatsFactory {
    config: NatsConfig,
    admin: NatsTransport,
    /// Every connection handed out, so that they can all be severed.
    opened: Mutex<Vec<NatsTransport>>,
}

impl NatsFactory {
    /// The factory, or None (with the reason printed) when NATS cannot be reached, except
    /// with CI=true, where that fails the test.
    pub async fn new_or_skip(mode: NatsMode) -> Option<Self> {
        let config = NatsConfig {
            url: std::env::var("NATS_URL").unwrap_or_else(|_| NatsConfig::default().url),
            // Short, so that the checks that wait it out take seconds.
            ack_wait: ACK_WAIT,
            mode,
            ..NatsConfig::default()
        };
        match NatsTransport::connect(config.clone()).await {
            Ok(admin) => Some(Self {
                config,
                admin,
                opened: Mutex::new(Vec::new()),
            }),
            Err(error) => {
                fibrpc_test_support::skip_or_fail("NATS", error, "start nats-server with -js");
                None
            }
        }
    }

    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// The connection that declares and deletes queues for the tests.
    pub fn admin(&self) -> &NatsTransport {
        &self.admin
    }
}

#[async_trait]
impl TransportFactory for NatsFactory {
    async fn connect(&self) -> Result<Connection, TransportError> {
        let transport = NatsTransport::connect(self.config.clone()).await?;
        self.opened
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(transport.clone());
        Ok(Connection::new(transport))
    }

    fn admin(&self) -> &dyn QueueAdmin {
        &self.admin
    }

    /// Drops (and lets async-nats re-establish) exactly the connections this factory handed
    /// out, through the adapter's `force_reconnect`: other tests' connections are untouched.
    async fn sever_connections(&self) -> bool {
        let opened: Vec<NatsTransport> = self
            .opened
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let mut severed = !opened.is_empty();
        for transport in &opened {
            severed &= transport.force_reconnect().await.is_ok();
        }
        severed
    }

    /// A request whose deadline header is no number, as a foreign client could publish.
    async fn send_malformed(&self, queue: &str) -> bool {
        let client = async_nats::connect(self.config.url.as_str())
            .await
            .expect("cannot connect to NATS");
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Fibrpc-Deadline-Ms", "soon");
        if self.config.mode == NatsMode::Core {
            client
                .publish_with_headers(queue.to_owned(), headers, "malformed".into())
                .await
                .expect("cannot publish the malformed message");
            // Once flushed it is the server's, ahead of anything sent after it.
            client.flush().await.expect("cannot flush");
            return true;
        }
        // Kept until the ack is in: its client is the connection the ack comes on.
        let jetstream = async_nats::jetstream::new(client);
        let published = jetstream
            .publish_with_headers(fibrpc_nats::subject(queue), headers, "malformed".into())
            .await
            .expect("cannot publish the malformed message");
        published.await.expect("JetStream did not store it");
        true
    }

    /// A killed server's requests come back after the consumer's ack wait; a live one keeps
    /// what it holds from it with progress acknowledgements.
    fn redelivery_timeout(&self) -> Duration {
        ACK_WAIT
    }

    /// Expiry holds although nats-server 2.9 has no per-message TTL: the adapter's request
    /// stream drops expired requests itself. Redelivery, the prefetch limit, rejection and
    /// `NoSuchQueue` on requests come from JetStream.
    fn lacks(&self, guarantee: Guarantee) -> Option<&'static str> {
        if self.config.mode == NatsMode::Core {
            return core_lacks(guarantee);
        }
        match guarantee {
            Guarantee::NoSuchQueueOnReply => Some(
                "replies go over core NATS, which cannot tell whether anyone subscribes to a \
                 subject: a reply to a vanished inbox is dropped by the server, not refused",
            ),
            _ => None,
        }
    }
}

/// What core NATS request/reply cannot give: it stores nothing. A request goes to one
/// subscriber of the queue group at once, or fails with "no responders"; once pushed to a
/// server it is that server's alone, and lost with it.
fn core_lacks(guarantee: Guarantee) -> Option<&'static str> {
    match guarantee {
        Guarantee::QueuedRequests => Some(
            "core NATS keeps no queue: a request sent while no server subscribes fails with \
             NoSuchQueue (no responders) instead of waiting",
        ),
        Guarantee::Redelivery | Guarantee::RedeliveryAfterProcessDeath => Some(
            "core NATS stores nothing: a request pushed to a server that drops it or dies is \
             not delivered again (the call times out, or is resent under a retry policy)",
        ),
        Guarantee::PrefetchLimit => Some(
            "core NATS pushes every request to a queue-group member at once: nothing waits in \
             the broker for a server to have room",
        ),
        Guarantee::NoSuchQueueOnReply => Some(
            "replies go over core NATS, which cannot tell whether anyone subscribes to a \
             subject: a reply to a vanished inbox is dropped by the server, not refused",
        ),
        _ => None,
    }
}
