//! The flags (and environment variables) that say where the broker is and how the request
//! queue is declared, shared by `fibrpc`, the bench and any server built on [`serve`].
//!
//! [`serve`]: crate::serve()

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use clap::{Args, ValueEnum};
use fibrpc_ports::Connection;
use fibrpc_rpc::{Backoff, RetryPolicy};

use crate::connect::{connect_with, ConnectOptions};
use crate::transports::{transport_named, transport_of, Transport, UrlFlag, TRANSPORTS};
use crate::{QueueKind, ReplyToMode, RequestGuarantees, RequestQueueSpec};

/// Where the brokers are. Their passwords are never printed, nor the environment's values.
#[derive(Args, Clone)]
pub struct BrokerUrls {
    /// `--<transport>-url` (and its variable) for each transport.
    #[command(flatten)]
    pub urls: Urls,
    /// Try the AMQP addresses in a random order, so that many processes spread over the
    /// nodes (default: the order given, nearest first).
    #[arg(long, env = "AMQP_SHUFFLE", value_parser = clap::builder::BoolishValueParser::new())]
    pub amqp_shuffle: bool,
    #[command(flatten)]
    pub guarantees: GuaranteeArgs,
}

/// The guarantees a client may give up for speed, each on unless turned off: what each
/// loses is in docs/performance.md ("What each guarantee costs"). RabbitMQ only.
#[derive(Args, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[command(next_help_heading = "Request guarantees, all on by default (RabbitMQ)")]
pub struct GuaranteeArgs {
    /// No publisher confirms on requests: a request the broker loses, or one to a missing
    /// queue, shows only as its call's timeout.
    #[arg(long)]
    pub no_confirm: bool,
    /// Requests not `mandatory`: one to a missing queue is dropped, and its call times out
    /// instead of failing at once with "no such queue".
    #[arg(long)]
    pub no_mandatory: bool,
    /// No deadline on requests (AMQP `expiration`): the broker keeps, and a server handles, a
    /// request whose caller has given up.
    #[arg(long)]
    pub no_expiration: bool,
}

impl GuaranteeArgs {
    /// The adapter's settings these flags give.
    pub fn guarantees(&self) -> RequestGuarantees {
        RequestGuarantees {
            confirm: !self.no_confirm,
            mandatory: !self.no_mandatory,
            expiration: !self.no_expiration,
        }
    }
}

impl BrokerUrls {
    /// The URL of `transport`'s broker, as its flag or variable gives it (or its default).
    pub fn url(&self, transport: &Transport) -> String {
        match transport.url_flag {
            Some(flag) => self.urls.get(flag).to_owned(),
            None => transport.default_url(),
        }
    }

    /// Connects to `url`, with what the flags say besides it: a client when `request_queue`
    /// is None, else a server that declares its request queue, if missing, as they say.
    ///
    /// # Errors
    /// One line: an unreadable CA file, flags the transport does not read, or why the
    /// connection failed.
    pub async fn connect(
        &self,
        url: &str,
        tls_ca: Option<&std::path::Path>,
        reply_to: ReplyToMode,
        request_queue: Option<&RequestQueueArgs>,
    ) -> Result<Connection, String> {
        if let (Some(transport), Some(flags)) = (transport_of(url), request_queue) {
            check_queue_flags(transport, flags)?;
        }
        let tls_ca_pem =
            match tls_ca {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
                    format!("cannot read the CA file {}: {error}", path.display())
                })?),
                None => None,
            };
        let options = ConnectOptions {
            tls_ca_pem,
            reply_to,
            request_queue: match request_queue {
                Some(flags) => flags.spec()?,
                None => RequestQueueSpec::default(),
            },
            shuffle_addresses: self.amqp_shuffle,
            connection_name: Some(format!("fibrpc {}", std::process::id())),
            guarantees: self.guarantees.guarantees(),
        };
        connect_with(url, &options)
            .await
            .map_err(|error| error.to_string())
    }
}

/// Where the broker is and which queue carries the requests.
#[derive(Args, Clone)]
pub struct BrokerArgs {
    /// The broker's adapter.
    #[arg(long, default_value = "amqp", value_parser = TransportChoice::parser(false))]
    pub transport: TransportChoice,
    /// The broker's URL, whose scheme chooses the transport (amqp://, amqps://, nats://,
    /// redis://): instead of `--transport` and its `--<transport>-url`.
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    #[command(flatten)]
    pub urls: BrokerUrls,
    /// The request queue.
    #[arg(long, default_value = "rpc_queue")]
    pub queue: String,
    /// A PEM file of CA certificates to trust for `amqps://` (besides the system's).
    #[arg(long, env = "FIBRPC_TLS_CA")]
    pub tls_ca: Option<PathBuf>,
}

impl BrokerArgs {
    /// The broker's URL: `--url`, else the chosen transport's URL flag.
    pub fn broker_url(&self) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => self.urls.url(&self.transport),
        }
    }

    /// Connects a client: it declares no request queue.
    ///
    /// # Errors
    /// As [`BrokerUrls::connect`].
    pub async fn connect(&self, reply_to: ReplyToMode) -> Result<Connection, String> {
        let url = self.broker_url();
        self.urls
            .connect(&url, self.tls_ca.as_deref(), reply_to, None)
            .await
    }

    /// Connects a server, which declares its request queue if it is missing, as
    /// `request_queue` says. Bad combinations of flags are refused before connecting.
    ///
    /// # Errors
    /// As [`BrokerUrls::connect`].
    pub async fn connect_server(
        &self,
        request_queue: &RequestQueueArgs,
    ) -> Result<Connection, String> {
        let url = self.broker_url();
        let (tls_ca, reply_to) = (self.tls_ca.as_deref(), ReplyToMode::Queue);
        self.urls
            .connect(&url, tls_ca, reply_to, Some(request_queue))
            .await
    }
}

/// A `--transport` value: the transport it names.
#[derive(Clone, Copy, Debug)]
pub struct TransportChoice(pub &'static Transport);

impl std::ops::Deref for TransportChoice {
    type Target = Transport;

    fn deref(&self) -> &Self::Target {
        self.0
    }
}

impl TransportChoice {
    /// The parser of `--transport`: the transports' names (with `all`, the in-process ones
    /// too).
    pub fn parser(all: bool) -> impl TypedValueParser<Value = TransportChoice> {
        let values = TRANSPORTS
            .iter()
            .filter(move |transport| all || !transport.in_process)
            .map(|transport| PossibleValue::new(transport.name).help(transport.about));
        PossibleValuesParser::new(values).map(|name| {
            // The parser accepts known names only.
            TransportChoice(transport_named(&name).unwrap_or(&TRANSPORTS[0]))
        })
    }
}

/// The URL flag of every transport, as given (or defaulted).
#[derive(Clone, Default)]
pub struct Urls(BTreeMap<&'static str, String>);

impl Urls {
    fn url_flags() -> impl Iterator<Item = UrlFlag> {
        TRANSPORTS.iter().filter_map(|transport| transport.url_flag)
    }

    /// The URL `flag` gives.
    pub fn get(&self, flag: UrlFlag) -> &str {
        self.0.get(flag.long).map_or(flag.default, String::as_str)
    }

    /// Each flag's variable and value, for a child process to reach the same brokers without
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueType {
    /// A classic queue, as the tutorial declares it.
    Classic,
    /// A replicated quorum queue (always durable).
    Quorum,
}

/// How a server declares the request queue if it does not exist. An existing queue is used
/// as it is, whatever its type and arguments. RabbitMQ only.
#[derive(Args, Clone, Default)]
#[command(next_help_heading = "Request queue, declared only if missing (RabbitMQ)")]
pub struct RequestQueueArgs {
    /// The queue's type [default: classic].
    #[arg(long, value_enum, value_name = "TYPE")]
    pub queue_type: Option<QueueType>,
    /// Make it survive a broker restart (quorum queues always do).
    #[arg(long)]
    pub durable: bool,
    /// Where requests go when dead-lettered (past the delivery limit, expired, rejected).
    #[arg(long, value_name = "EXCHANGE")]
    pub dead_letter_exchange: Option<String>,
    /// Quorum only: a request returned to the queue more than N times (its server died or
    /// gave it back) is dead-lettered instead of delivered again.
    #[arg(long, value_name = "N")]
    pub delivery_limit: Option<u32>,
}

impl RequestQueueArgs {
    /// The flags given, by name, for an error message.
    pub fn given(&self) -> Vec<&'static str> {
        let flags = [
            (self.queue_type.is_some(), "--queue-type"),
            (self.durable, "--durable"),
            (
                self.dead_letter_exchange.is_some(),
                "--dead-letter-exchange",
            ),
            (self.delivery_limit.is_some(), "--delivery-limit"),
        ];
        flags
            .into_iter()
            .filter_map(|(given, name)| given.then_some(name))
            .collect()
    }

    /// The flags again, for a server process started with the same.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if let Some(kind) = self.queue_type {
            let kind = match kind {
                QueueType::Classic => "classic",
                QueueType::Quorum => "quorum",
            };
            args.extend(["--queue-type".to_owned(), kind.to_owned()]);
        }
        if self.durable {
            args.push("--durable".to_owned());
        }
        if let Some(exchange) = &self.dead_letter_exchange {
            args.extend(["--dead-letter-exchange".to_owned(), exchange.clone()]);
        }
        if let Some(limit) = self.delivery_limit {
            args.extend(["--delivery-limit".to_owned(), limit.to_string()]);
        }
        args
    }

    /// The queue settings the flags give, checked, in the flags' words.
    ///
    /// # Errors
    /// A delivery limit on a classic queue; a dead-letter exchange without a name.
    pub fn spec(&self) -> Result<RequestQueueSpec, String> {
        let spec = RequestQueueSpec {
            kind: match self.queue_type {
                None | Some(QueueType::Classic) => QueueKind::Classic,
                Some(QueueType::Quorum) => QueueKind::Quorum,
            },
            durable: self.durable,
            dead_letter_exchange: self.dead_letter_exchange.clone(),
            delivery_limit: self.delivery_limit,
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
}

/// Refuses request-queue flags the transport would not read.
///
/// # Errors
/// The flags given and the transports that take them.
pub fn check_queue_flags(transport: &Transport, flags: &RequestQueueArgs) -> Result<(), String> {
    let given = flags.given();
    if transport.takes_queue_spec || given.is_empty() {
        return Ok(());
    }
    let takers: Vec<&str> = TRANSPORTS
        .iter()
        .filter(|transport| transport.takes_queue_spec)
        .map(|transport| transport.name)
        .collect();
    Err(format!(
        "{} apply only to --transport {}",
        given.join(", "),
        takers.join(", ")
    ))
}

/// A duration flag: `5s`, `500ms`, or seconds (`2.5`).
///
/// # Errors
/// One line saying what was not understood.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit_seconds) = if let Some(ms) = text.strip_suffix("ms") {
        (ms, 0.001)
    } else if let Some(s) = text.strip_suffix('s') {
        (s, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (try 5s, 500ms or 2.5)"))?;
    Duration::try_from_secs_f64(value * unit_seconds)
        .map_err(|_| format!("{text:?} is not a usable duration"))
}

/// `--retry`: calls sent again after a lost connection, within their deadline.
pub fn retry_policy(retry: bool) -> RetryPolicy {
    if retry {
        RetryPolicy::Idempotent {
            backoff: Backoff::default(),
        }
    } else {
        RetryPolicy::Never
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_three_forms() {
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2.5"), Ok(Duration::from_millis(2500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }

    #[test]
    fn queue_flags_are_refused_where_they_would_be_ignored() {
        let flags = RequestQueueArgs {
            durable: true,
            ..RequestQueueArgs::default()
        };
        let transport = |name| transport_named(name).unwrap();
        assert!(check_queue_flags(transport("amqp"), &flags).is_ok());
        let refused = check_queue_flags(transport("nats"), &flags).unwrap_err();
        assert!(
            refused.contains("--durable") && refused.contains("amqp"),
            "{refused}"
        );
    }
}
