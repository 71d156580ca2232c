//! What a transport registration gives the command line ([`CliTransport`]), and what reads
//! the registry: the `--transport` parser, the URL flags, the request-queue flags' check,
//! connecting as `serve` and `call` do. The transports themselves are registered in
//! `transport.rs`, the one file a new transport touches.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use fibrpc_ports::{ReplyTransport, RequestTransport, TransportError};

use crate::args::{BrokerArgs, BrokerUrls, ReplyToMode, RequestQueueArgs};
use crate::bench::BrokerName;
use crate::transport::TRANSPORTS;

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

/// Declares and removes request queues: a connection of the adapter, as
/// [`CliTransport::declare_queue`] returns it. The adapters' transports implement it with
/// [`queue_admin!`].
#[async_trait]
pub trait QueueAdmin: Send + Sync {
    async fn declare(&self, queue: &str) -> Result<(), String>;
    async fn delete(&self, queue: &str) -> Result<(), String>;
}

/// `QueueAdmin` for transports with `declare_request_queue` and `delete_queue`.
macro_rules! queue_admin {
    ($($transport:ty),*) => {$(
        #[::async_trait::async_trait]
        impl $crate::registry::QueueAdmin for $transport {
            async fn declare(&self, queue: &str) -> Result<(), String> {
                self.declare_request_queue(queue).await.map_err($crate::registry::text)
            }
            async fn delete(&self, queue: &str) -> Result<(), String> {
                self.delete_queue(queue).await.map_err($crate::registry::text)
            }
        }
    )*};
}
pub(crate) use queue_admin;

/// `queue` declared through `admin`, a new connection, which then removes it.
pub(crate) async fn declared(
    admin: Result<impl QueueAdmin + 'static, TransportError>,
    queue: &str,
) -> Result<Box<dyn QueueAdmin>, String> {
    let admin = admin.map_err(text)?;
    admin.declare(queue).await?;
    Ok(Box::new(admin))
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
    pub fn new<T: RequestTransport + ReplyTransport + 'static>(transport: T) -> Self {
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

pub(crate) fn named(name: &str) -> Choice {
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

pub(crate) fn text(error: TransportError) -> String {
    error.to_string()
}

/// A bare echo server started, as the bench holds one.
pub(crate) fn started(
    echo: Result<impl BareEcho + 'static, TransportError>,
    what: &str,
) -> Result<Box<dyn BareEcho>, String> {
    match echo {
        Ok(echo) => Ok(Box::new(echo)),
        Err(error) => Err(format!("{what}: {error}")),
    }
}

/// A bare client connected, as the bench's workers share one.
pub(crate) fn connected(
    client: Result<impl BareCall + 'static, TransportError>,
) -> Result<Arc<dyn BareCall>, String> {
    match client {
        Ok(client) => Ok(Arc::new(client)),
        Err(error) => Err(format!("bare client: {error}")),
    }
}
