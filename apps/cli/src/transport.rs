//! The transports the command line knows, and the one place to register one.
//!
//! Every command reaches an adapter through a [`CliTransport`]: `serve` and `call` connect
//! with it, `bench` declares and deletes its queues, connects its servers and clients, finds
//! the broker's processes and runs the bare baseline with it, `bare-echo` runs that baseline
//! alone. Adding a transport is one `impl CliTransport` below and one entry in [`TRANSPORTS`]
//! (its `name` is the `--transport` value), plus the adapter's crate in Cargo.toml.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use fibrpc_amqp::{AmqpConfig, AmqpTransport, QueueKind, ReplyQueueMode, RequestQueueSpec};
use fibrpc_in_memory::InMemoryBroker;
use fibrpc_nats::{NatsConfig, NatsTransport};
use fibrpc_ports::{ReplyTransport, RequestTransport, TransportError};
use fibrpc_redis::{RedisConfig, RedisTransport};

use crate::args::{BrokerArgs, BrokerUrls, QueueType, ReplyToMode, RequestQueueArgs};
use crate::bench::BrokerName;

/// Every transport `--transport` can name, the default first.
static TRANSPORTS: &[&dyn CliTransport] = &[&Amqp, &Nats, &Redis, &Memory];

/// What the command line needs of one adapter.
#[async_trait]
pub trait CliTransport: Send + Sync {
    /// The `--transport` value.
    fn name(&self) -> &'static str;

    /// One line for `--help`.
    fn about(&self) -> &'static str;

    /// True for a broker inside this process: `serve`, `call`, `bare-echo` and server
    /// processes cannot use it, and the bench's baseline is a channel to an echo task.
    fn in_process(&self) -> bool {
        false
    }

    /// Whether it reads the request-queue flags (`--queue-type`, `--durable`, ...); where it
    /// does not, giving one is an error rather than silently ignored.
    fn takes_queue_flags(&self) -> bool {
        false
    }

    /// The flag (and environment variable) that says where its broker is, if it has one.
    fn url_flag(&self) -> Option<UrlFlag> {
        None
    }

    /// A connection, usable as both ports.
    async fn connect(&self, flags: &Flags<'_>) -> Result<Transport, String>;

    /// Makes sure the request queue `queue` exists, as a server declares it; the handle
    /// returned removes it (`fibrpc bench` declares the queue of its run).
    async fn declare_queue(
        &self,
        flags: &Flags<'_>,
        queue: &str,
    ) -> Result<Box<dyn QueueAdmin>, String>;

    /// The broker's addresses and how its process is recognised, for the bench's CPU
    /// accounting; None when there is no broker process.
    fn broker_process(&self, urls: &BrokerUrls) -> Option<(String, BrokerName)> {
        let _ = urls;
        None
    }

    /// What the bare baseline is, for the bench's labels.
    fn baseline_label(&self) -> &'static str {
        "baseline (none)"
    }

    /// Starts the bare echo server `bench --baseline` and `bare-echo` run on `queue`.
    async fn bare_echo(
        &self,
        urls: &BrokerUrls,
        queue: &str,
        prefetch: u16,
    ) -> Result<Box<dyn BareEcho>, String> {
        let _ = (urls, queue, prefetch);
        Err(format!("--transport {} has no bare baseline", self.name()))
    }

    /// Connects a bare client of `queue`.
    async fn bare_client(
        &self,
        urls: &BrokerUrls,
        queue: &str,
        max_in_flight: usize,
    ) -> Result<Arc<dyn BareCall>, String> {
        let _ = (urls, queue, max_in_flight);
        Err(format!("--transport {} has no bare baseline", self.name()))
    }

    /// Declares the bare echo's queue before the echo servers use it, where they need that;
    /// the handle removes it afterwards.
    async fn declare_bare_queue(
        &self,
        flags: &Flags<'_>,
        queue: &str,
    ) -> Result<Option<Box<dyn QueueAdmin>>, String> {
        let _ = (flags, queue);
        Ok(None)
    }
}

/// Removes a request queue declared by [`CliTransport::declare_queue`].
#[async_trait]
pub trait QueueAdmin: Send + Sync {
    async fn delete(&self, queue: &str) -> Result<(), String>;
}

/// A running bare echo server.
#[async_trait]
pub trait BareEcho: Send {
    /// Replies sent so far.
    fn echoed(&self) -> u64;
    /// Resolves when the server stops by itself (connection lost).
    async fn ended(&mut self);
    async fn stop(self: Box<Self>);
}

/// A bare client: the reply must be the request's body.
#[async_trait]
pub trait BareCall: Send + Sync {
    async fn call(&self, body: &[u8]) -> Result<Vec<u8>, TransportError>;
}

/// A connected transport, usable as both ports.
pub struct Transport {
    pub requests: Arc<dyn RequestTransport>,
    pub replies: Arc<dyn ReplyTransport>,
}

impl Transport {
    fn new<T: RequestTransport + ReplyTransport + 'static>(transport: T) -> Self {
        let transport = Arc::new(transport);
        Self {
            requests: transport.clone(),
            replies: transport,
        }
    }
}

/// What the flags say about the broker, for each transport to take what it reads.
pub struct Flags<'a> {
    pub urls: &'a BrokerUrls,
    pub tls_ca: Option<&'a Path>,
    pub reply_to: ReplyToMode,
    /// How a server declares its request queue if it is missing; None for a client.
    pub request_queue: Option<&'a RequestQueueArgs>,
}

/// Where a transport's broker is: `--<long>`, or the variable `<env>`, else `default`.
#[derive(Clone, Copy)]
pub struct UrlFlag {
    pub long: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// The URL flag of every registered transport, as given (or defaulted).
#[derive(Clone, Default)]
pub struct Urls(BTreeMap<&'static str, String>);

impl Urls {
    fn url_flags() -> impl Iterator<Item = UrlFlag> {
        TRANSPORTS
            .iter()
            .filter_map(|transport| transport.url_flag())
    }

    /// The URL `flag` gives.
    pub fn get(&self, flag: UrlFlag) -> &str {
        self.0.get(flag.long).map_or(flag.default, String::as_str)
    }

    /// Each flag's variable and value, for a child `fibrpc` to reach the same brokers without
    /// a password on its command line.
    pub fn variables(&self) -> Vec<(&'static str, String)> {
        Self::url_flags()
            .map(|flag| (flag.env, self.get(flag).to_owned()))
            .collect()
    }
}

impl clap::FromArgMatches for Urls {
    fn from_arg_matches(matches: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let given = Self::url_flags().filter_map(|flag| {
            let url = matches.get_one::<String>(flag.long)?;
            Some((flag.long, url.clone()))
        });
        Ok(Self(given.collect()))
    }

    fn update_from_arg_matches(&mut self, matches: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for Urls {
    fn augment_args(command: clap::Command) -> clap::Command {
        Self::url_flags().fold(command, |command, flag| {
            command.arg(
                clap::Arg::new(flag.long)
                    .long(flag.long)
                    .env(flag.env)
                    .hide_env_values(true)
                    .default_value(flag.default)
                    .value_name("URL")
                    .help(flag.help),
            )
        })
    }

    fn augment_args_for_update(command: clap::Command) -> clap::Command {
        Self::augment_args(command)
    }
}

/// A `--transport` value: the registered transport it names.
#[derive(Clone, Copy)]
pub struct Choice(&'static dyn CliTransport);

impl std::ops::Deref for Choice {
    type Target = dyn CliTransport;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

/// The parser of `--transport`: the registered names (with `all`, the in-process ones too).
pub fn parser(all: bool) -> impl TypedValueParser<Value = Choice> {
    let values = TRANSPORTS
        .iter()
        .filter(move |transport| all || !transport.in_process())
        .map(|transport| PossibleValue::new(transport.name()).help(transport.about()));
    PossibleValuesParser::new(values).map(|name| named(&name))
}

fn named(name: &str) -> Choice {
    let found = TRANSPORTS.iter().find(|transport| transport.name() == name);
    // The parser accepts registered names only.
    Choice(*found.unwrap_or(&TRANSPORTS[0]))
}

/// Refuses request-queue flags the transport would not read.
pub fn check_queue_flags(
    transport: &dyn CliTransport,
    flags: &RequestQueueArgs,
) -> Result<(), String> {
    let given = flags.given();
    if transport.takes_queue_flags() || given.is_empty() {
        return Ok(());
    }
    let takers: Vec<&str> = TRANSPORTS
        .iter()
        .filter(|transport| transport.takes_queue_flags())
        .map(|transport| transport.name())
        .collect();
    Err(format!(
        "{} apply only to --transport {}",
        given.join(", "),
        takers.join(", ")
    ))
}

/// Connects a client: it declares no request queue.
pub async fn connect(broker: &BrokerArgs, reply_to: ReplyToMode) -> Result<Transport, String> {
    let flags = Flags {
        urls: &broker.urls,
        tls_ca: broker.tls_ca.as_deref(),
        reply_to,
        request_queue: None,
    };
    broker.transport.connect(&flags).await
}

/// Connects a server, which declares its request queue if it is missing, as `request_queue`
/// says. Bad combinations of flags are refused before connecting.
pub async fn connect_server(
    broker: &BrokerArgs,
    request_queue: &RequestQueueArgs,
) -> Result<Transport, String> {
    check_queue_flags(&*broker.transport, request_queue)?;
    let flags = Flags {
        urls: &broker.urls,
        tls_ca: broker.tls_ca.as_deref(),
        reply_to: ReplyToMode::Exclusive,
        request_queue: Some(request_queue),
    };
    broker.transport.connect(&flags).await
}

fn text(error: TransportError) -> String {
    error.to_string()
}

/// A bare echo server started, as the bench holds one.
fn started(
    echo: Result<impl BareEcho + 'static, TransportError>,
    what: &str,
) -> Result<Box<dyn BareEcho>, String> {
    match echo {
        Ok(echo) => Ok(Box::new(echo)),
        Err(error) => Err(format!("{what}: {error}")),
    }
}

/// A bare client connected, as the bench's workers share one.
fn connected(
    client: Result<impl BareCall + 'static, TransportError>,
) -> Result<Arc<dyn BareCall>, String> {
    match client {
        Ok(client) => Ok(Arc::new(client)),
        Err(error) => Err(format!("bare client: {error}")),
    }
}

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
        let admin = AmqpTransport::connect(Self::config(flags)?)
            .await
            .map_err(text)?;
        admin.declare_request_queue(queue).await.map_err(text)?;
        Ok(Box::new(admin))
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
impl QueueAdmin for AmqpTransport {
    async fn delete(&self, queue: &str) -> Result<(), String> {
        self.delete_queue(queue).await.map_err(text)
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

/// NATS with JetStream, through `fibrpc-nats`.
struct Nats;

const NATS_URL: UrlFlag = UrlFlag {
    long: "nats-url",
    env: "NATS_URL",
    default: "nats://127.0.0.1:4222",
    help: "The NATS server's URL, for `--transport nats`",
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
        "NATS with JetStream"
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
        let admin = NatsTransport::connect(Self::config(flags.urls))
            .await
            .map_err(text)?;
        admin.declare_request_queue(queue).await.map_err(text)?;
        Ok(Box::new(admin))
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
impl QueueAdmin for NatsTransport {
    async fn delete(&self, queue: &str) -> Result<(), String> {
        self.delete_queue(queue).await.map_err(text)
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
        let admin = RedisTransport::connect(Self::config(flags.urls))
            .await
            .map_err(text)?;
        admin.declare_request_queue(queue).await.map_err(text)?;
        Ok(Box::new(admin))
    }

    fn broker_process(&self, urls: &BrokerUrls) -> Option<(String, BrokerName)> {
        let url = urls.urls.get(REDIS_URL).to_owned();
        Some((
            url,
            BrokerName::new("redis-server", None, &[("redis", 6379)]),
        ))
    }
}

#[async_trait]
impl QueueAdmin for RedisTransport {
    async fn delete(&self, queue: &str) -> Result<(), String> {
        self.delete_queue(queue).await.map_err(text)
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
        MEMORY_BROKER.declare_queue(queue);
        Ok(Box::new(MEMORY_BROKER.clone()))
    }
}

#[async_trait]
impl QueueAdmin for InMemoryBroker {
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
        assert_eq!(named("nats").name(), "nats");
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
