//! The transports the command line knows, and the one place to register one.
//!
//! Every command reaches an adapter through a [`CliTransport`]: `serve` and `call` connect
//! with it, `bench` declares and deletes its queues, connects its servers and clients, finds
//! the broker's processes and runs the bare baseline with it, `bare-echo` runs that baseline
//! alone. Adding a transport is one `impl CliTransport` below, one entry in [`TRANSPORTS`]
//! (its `name` is the `--transport` value) and one in `queue_admin!`, plus the adapter's crate
//! in Cargo.toml. What the trait asks, and what reads the registry, is in `registry.rs`.

use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use fibrpc_amqp::{AmqpConfig, AmqpTransport, QueueKind, ReplyQueueMode, RequestQueueSpec};
use fibrpc_in_memory::InMemoryBroker;
use fibrpc_nats::{NatsConfig, NatsTransport};
use fibrpc_ports::TransportError;
use fibrpc_redis::{RedisConfig, RedisTransport};

use crate::args::{BrokerUrls, QueueType, ReplyToMode, RequestQueueArgs};
use crate::bench::BrokerName;
pub use crate::registry::{
    check_queue_flags, connect, connect_server, parser, BareCall, BareEcho, Choice, CliTransport,
    Flags, QueueAdmin, Transport, UrlFlag, Urls,
};
use crate::registry::{connected, declared, queue_admin, started, text};

/// Every transport `--transport` can name, the default first.
pub(crate) static TRANSPORTS: &[&dyn CliTransport] = &[&Amqp, &Nats, &Redis, &Memory];

// The adapters' connections declare and delete request queues for the bench.
queue_admin!(AmqpTransport, NatsTransport, RedisTransport);

/// RabbitMQ, through `fibrpc-amqp`.
struct Amqp;

const AMQP_URL: UrlFlag = UrlFlag {
    long: "amqp-url",
    env: "AMQP_URL",
    default: "amqp://127.0.0.1:5672/%2f",
    help: "RabbitMQ's URL, with user, password and vhost; or the nodes of a cluster, comma \
           separated, tried in turn (`amqp://u:p@h1:5672/%2f,h2:5672,h3:5672`: later entries \
           may be host:port, taking the first's user, password and vhost)",
};

impl Amqp {
    fn config(flags: &Flags<'_>) -> Result<AmqpConfig, String> {
        let tls_ca_pem =
            match flags.tls_ca {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
                    format!("cannot read the CA file {}: {error}", path.display())
                })?),
                None => None,
            };
        let request_queue = match flags.request_queue {
            Some(args) => request_queue_spec(args)?,
            None => RequestQueueSpec::default(),
        };
        Ok(AmqpConfig {
            url: flags.urls.urls.get(AMQP_URL).to_owned(),
            shuffle_addresses: flags.urls.amqp_shuffle,
            reply_queue: match flags.reply_to {
                ReplyToMode::Exclusive => ReplyQueueMode::Exclusive,
                ReplyToMode::Direct => ReplyQueueMode::Direct,
            },
            tls_ca_pem,
            connection_name: Some(format!("fibrpc {}", std::process::id())),
            request_queue,
            ..AmqpConfig::default()
        })
    }
}

/// The queue settings the flags give, checked.
fn request_queue_spec(args: &RequestQueueArgs) -> Result<RequestQueueSpec, String> {
    let spec = RequestQueueSpec {
        kind: match args.queue_type {
            None | Some(QueueType::Classic) => QueueKind::Classic,
            Some(QueueType::Quorum) => QueueKind::Quorum,
        },
        durable: args.durable,
        dead_letter_exchange: args.dead_letter_exchange.clone(),
        delivery_limit: args.delivery_limit,
    };
    spec.validate().map_err(|error| match error {
        fibrpc_amqp::QueueSpecError::DeliveryLimitNeedsQuorum => {
            "--delivery-limit needs --queue-type quorum (RabbitMQ counts deliveries only in quorum queues)".to_owned()
        }
        fibrpc_amqp::QueueSpecError::UnnamedDeadLetterExchange => {
            "--dead-letter-exchange needs a name (the default exchange would send a dead-lettered request back to its own queue)".to_owned()
        }
    })?;
    Ok(spec)
}

#[async_trait]
impl CliTransport for Amqp {
    fn name(&self) -> &'static str {
        "amqp"
    }
    fn about(&self) -> &'static str {
        "RabbitMQ (AMQP 0-9-1)"
    }
    fn takes_queue_flags(&self) -> bool {
        true
    }
    fn url_flag(&self) -> Option<UrlFlag> {
        Some(AMQP_URL)
    }

    async fn connect(&self, flags: &Flags<'_>) -> Result<Transport, String> {
        let transport = AmqpTransport::connect(Self::config(flags)?).await;
        transport.map(Transport::new).map_err(text)
    }

    async fn declare_queue(
        &self,
        flags: &Flags<'_>,
        queue: &str,
    ) -> Result<Box<dyn QueueAdmin>, String> {
        declared(AmqpTransport::connect(Self::config(flags)?).await, queue).await
    }

    fn broker_process(&self, urls: &BrokerUrls) -> Option<(String, BrokerName)> {
        // A cluster's list may name later nodes by host:port alone: full URLs first.
        let url = urls.urls.get(AMQP_URL);
        let nodes = fibrpc_amqp::parse_addresses(url)
            .map(|nodes| nodes.join(","))
            .unwrap_or_else(|_| url.to_owned());
        let ports = &[("amqp", 5672), ("amqps", 5671)];
        // Erlang's `beam.smp` running `rabbit`.
        Some((nodes, BrokerName::new("beam.smp", Some("rabbit"), ports)))
    }

    fn baseline_label(&self) -> &'static str {
        "baseline (bare lapin)"
    }

    async fn bare_echo(
        &self,
        urls: &BrokerUrls,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn BareEcho>, String> {
        let echo =
            fibrpc_amqp::baseline::BareEcho::start(urls.urls.get(AMQP_URL), queue, prefetch).await;
        started(echo, "bare AMQP echo")
    }

    async fn bare_client(
        &self,
        urls: &BrokerUrls,
        queue: &str,
        max_in_flight: usize,
    ) -> Result<Arc<dyn BareCall>, String> {
        connected(
            fibrpc_amqp::baseline::BareClient::connect(
                urls.urls.get(AMQP_URL),
                queue,
                max_in_flight,
            )
            .await,
        )
    }

    /// Declared as fibrpc's (same kind and arguments) before the echo servers use it.
    async fn declare_bare_queue(
        &self,
        flags: &Flags<'_>,
        queue: &str,
    ) -> Result<Option<Box<dyn QueueAdmin>>, String> {
        self.declare_queue(flags, queue).await.map(Some)
    }
}

#[async_trait]
impl BareEcho for fibrpc_amqp::baseline::BareEcho {
    fn echoed(&self) -> u64 {
        self.echoed()
    }
    async fn ended(&mut self) {
        self.ended().await;
    }
    async fn stop(self: Box<Self>) {
        (*self).stop().await;
    }
}

#[async_trait]
impl BareCall for fibrpc_amqp::baseline::BareClient {
    async fn call(&self, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.call(body).await
    }
}

/// NATS (core request/reply, or JetStream), through `fibrpc-nats`.
struct Nats;

const NATS_URL: UrlFlag = UrlFlag {
    long: "nats-url",
    env: "NATS_URL",
    default: "nats://127.0.0.1:4222",
    help: "The NATS server's URL, for `--transport nats`; `?mode=jetstream` stores requests in JetStream",
};

impl Nats {
    fn config(urls: &BrokerUrls) -> NatsConfig {
        NatsConfig {
            url: urls.urls.get(NATS_URL).to_owned(),
            ..NatsConfig::default()
        }
    }
}

#[async_trait]
impl CliTransport for Nats {
    fn name(&self) -> &'static str {
        "nats"
    }
    fn about(&self) -> &'static str {
        "NATS: core request/reply, or JetStream with `?mode=jetstream` in the URL"
    }
    fn url_flag(&self) -> Option<UrlFlag> {
        Some(NATS_URL)
    }

    async fn connect(&self, flags: &Flags<'_>) -> Result<Transport, String> {
        let transport = NatsTransport::connect(Self::config(flags.urls)).await;
        transport.map(Transport::new).map_err(text)
    }

    async fn declare_queue(
        &self,
        flags: &Flags<'_>,
        queue: &str,
    ) -> Result<Box<dyn QueueAdmin>, String> {
        declared(
            NatsTransport::connect(Self::config(flags.urls)).await,
            queue,
        )
        .await
    }

    fn broker_process(&self, urls: &BrokerUrls) -> Option<(String, BrokerName)> {
        let ports = &[("nats", 4222), ("tls", 4222)];
        let url = urls.urls.get(NATS_URL).to_owned();
        Some((url, BrokerName::new("nats-server", None, ports)))
    }

    fn baseline_label(&self) -> &'static str {
        "baseline (bare async-nats)"
    }

    async fn bare_echo(
        &self,
        urls: &BrokerUrls,
        queue: &str,
        _prefetch: u16,
    ) -> Result<Box<dyn BareEcho>, String> {
        let echo = fibrpc_nats::baseline::BareNatsEcho::start(urls.urls.get(NATS_URL), queue).await;
        started(echo, "bare NATS echo")
    }

    async fn bare_client(
        &self,
        urls: &BrokerUrls,
        queue: &str,
        _max_in_flight: usize,
    ) -> Result<Arc<dyn BareCall>, String> {
        connected(
            fibrpc_nats::baseline::BareNatsClient::connect(urls.urls.get(NATS_URL), queue).await,
        )
    }
}

#[async_trait]
impl BareEcho for fibrpc_nats::baseline::BareNatsEcho {
    fn echoed(&self) -> u64 {
        self.echoed()
    }
    async fn ended(&mut self) {
        self.ended().await;
    }
    async fn stop(self: Box<Self>) {
        (*self).stop();
    }
}

#[async_trait]
impl BareCall for fibrpc_nats::baseline::BareNatsClient {
    async fn call(&self, body: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.call(body).await
    }
}

/// Redis 7 Streams, through `fibrpc-redis`. No bare baseline yet.
struct Redis;

const REDIS_URL: UrlFlag = UrlFlag {
    long: "redis-url",
    env: "REDIS_URL",
    default: "redis://127.0.0.1:6379",
    help: "The Redis server's URL, for `--transport redis`",
};

impl Redis {
    fn config(urls: &BrokerUrls) -> RedisConfig {
        RedisConfig {
            url: urls.urls.get(REDIS_URL).to_owned(),
            ..RedisConfig::default()
        }
    }
}

#[async_trait]
impl CliTransport for Redis {
    fn name(&self) -> &'static str {
        "redis"
    }
    fn about(&self) -> &'static str {
        "Redis 7 (Streams)"
    }
    fn url_flag(&self) -> Option<UrlFlag> {
        Some(REDIS_URL)
    }

    async fn connect(&self, flags: &Flags<'_>) -> Result<Transport, String> {
        let transport = RedisTransport::connect(Self::config(flags.urls)).await;
        transport.map(Transport::new).map_err(text)
    }

    async fn declare_queue(
        &self,
        flags: &Flags<'_>,
        queue: &str,
    ) -> Result<Box<dyn QueueAdmin>, String> {
        declared(
            RedisTransport::connect(Self::config(flags.urls)).await,
            queue,
        )
        .await
    }

    fn broker_process(&self, urls: &BrokerUrls) -> Option<(String, BrokerName)> {
        let url = urls.urls.get(REDIS_URL).to_owned();
        Some((
            url,
            BrokerName::new("redis-server", None, &[("redis", 6379)]),
        ))
    }
}

/// The in-memory broker of `fibrpc-in-memory`: one per process, shared by every connection.
struct Memory;

static MEMORY_BROKER: LazyLock<InMemoryBroker> = LazyLock::new(InMemoryBroker::new);

#[async_trait]
impl CliTransport for Memory {
    fn name(&self) -> &'static str {
        "memory"
    }
    fn about(&self) -> &'static str {
        "fibrpc's in-memory broker, inside this process"
    }
    fn in_process(&self) -> bool {
        true
    }

    async fn connect(&self, _flags: &Flags<'_>) -> Result<Transport, String> {
        Ok(Transport::new(MEMORY_BROKER.connect()))
    }

    async fn declare_queue(
        &self,
        _flags: &Flags<'_>,
        queue: &str,
    ) -> Result<Box<dyn QueueAdmin>, String> {
        declared(Ok(MEMORY_BROKER.clone()), queue).await
    }
}

#[async_trait]
impl QueueAdmin for InMemoryBroker {
    async fn declare(&self, queue: &str) -> Result<(), String> {
        self.declare_queue(queue);
        Ok(())
    }
    async fn delete(&self, queue: &str) -> Result<(), String> {
        self.delete_queue(queue);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_the_in_process_ones_are_not_for_serving() {
        let names: std::collections::BTreeSet<_> = TRANSPORTS.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), TRANSPORTS.len());
        assert_eq!(crate::registry::named("nats").name(), "nats");
        assert!(!TRANSPORTS[0].in_process(), "the default must be a broker");
        let flags = RequestQueueArgs {
            durable: true,
            ..RequestQueueArgs::default()
        };
        assert!(check_queue_flags(&Amqp, &flags).is_ok());
        let refused = check_queue_flags(&Nats, &flags).unwrap_err();
        assert!(
            refused.contains("--durable") && refused.contains("amqp"),
            "{refused}"
        );
    }
}
