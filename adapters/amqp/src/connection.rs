//! The connection to the broker, replaced by a new one on first use after it is lost: to the
//! next address of the list that answers when there are several.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use fibrpc_ports::{Flow, FlowWatch, TransportError};
use futures_util::StreamExt;
use lapin::options::ConfirmSelectOptions;
use lapin::tcp::OwnedTLSConfig;
use lapin::{Channel, Connection, ConnectionProperties, Event};
use tokio::sync::{watch, Mutex, Semaphore};

use crate::addresses::{host_port, parse_addresses, shuffled, AddressError, AddressRing};
use crate::errors::{is_login_refused, translate};
use crate::redact::scrub;
use crate::{redact_url, AmqpConfig};

/// A live connection and its publishing channel (publisher confirms on unless the
/// configuration turns them off). Cheap to clone:
/// every request and reply takes one, and a lapin `Channel` is a dozen reference counts.
#[derive(Clone)]
pub(crate) struct Live {
    pub connection: Arc<Connection>,
    pub publisher: Arc<Channel>,
    /// The broker address it is connected to, password hidden.
    pub address: Arc<str>,
}

impl Live {
    fn is_usable(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }

    pub(crate) async fn open_channel(&self) -> Result<Channel, TransportError> {
        self.connection
            .create_channel()
            .await
            .map_err(|error| translate(&error, ""))
    }

    /// A new channel to publish requests on: with publisher confirms, if `confirm`.
    pub(crate) async fn open_publishing_channel(
        &self,
        confirm: bool,
    ) -> Result<Channel, TransportError> {
        publishing_channel(&self.connection, confirm).await
    }
}

/// The outcome of the latest reconnection attempt, shared with the callers that waited for it.
#[derive(Default)]
struct Attempts {
    last_failure: Option<TransportError>,
}

pub(crate) struct Link {
    config: AmqpConfig,
    addresses: AddressRing,
    current: RwLock<Option<Live>>,
    /// With direct reply-to, requests must go out on the channel that consumes the replies:
    /// the channel of the newest reply inbox.
    direct_reply_channel: RwLock<Option<Arc<Channel>>>,
    /// Serialises reconnections so that a lost connection is replaced once, not by every
    /// caller that notices. Held across the connect on purpose: only callers that need a new
    /// connection wait on it, never publishers on a live one.
    reconnecting: Mutex<Attempts>,
    /// Counts finished attempts, so that a caller who waited for someone else's attempt takes
    /// its outcome instead of making another (each call waits for one attempt at most).
    attempts_done: AtomicU64,
    /// Publishes not yet confirmed by the broker. A publish outlives a caller that gave up
    /// (see `client::publish`), so the callers' own bounds do not bound these.
    unconfirmed: Arc<Semaphore>,
    /// The broker's flow control on the live connection (`connection.blocked`).
    flow: watch::Sender<Flow>,
}

/// Publishes per connection awaiting their confirm at most; past it, publishers wait.
const MAX_UNCONFIRMED_PUBLISHES: usize = 4096;

impl Link {
    pub(crate) fn new(config: AmqpConfig) -> Result<Self, AddressError> {
        let mut urls = parse_addresses(&config.url)?;
        if config.shuffle_addresses {
            urls = shuffled(urls);
        }
        Ok(Self {
            addresses: AddressRing::new(urls),
            config,
            current: RwLock::new(None),
            direct_reply_channel: RwLock::new(None),
            reconnecting: Mutex::new(Attempts::default()),
            attempts_done: AtomicU64::new(0),
            unconfirmed: Arc::new(Semaphore::new(MAX_UNCONFIRMED_PUBLISHES)),
            flow: watch::Sender::new(Flow::Open),
        })
    }

    /// The address of the live connection (password hidden), if there is one.
    pub(crate) fn connected_address(&self) -> Option<String> {
        self.usable().map(|live| live.address.to_string())
    }

    pub(crate) fn unconfirmed_publishes(&self) -> &Arc<Semaphore> {
        &self.unconfirmed
    }

    /// Follows whether the broker blocks publishing on the live connection.
    pub(crate) fn flow(&self) -> FlowWatch {
        self.flow.subscribe()
    }

    pub(crate) fn config(&self) -> &AmqpConfig {
        &self.config
    }

    /// The live connection, opening a new one if there is none or it was lost.
    pub(crate) async fn live(&self) -> Result<Live, TransportError> {
        if let Some(live) = self.usable() {
            return Ok(live);
        }
        let seen = self.attempts_done.load(Ordering::Acquire);
        let mut attempts = self.reconnecting.lock().await;
        if let Some(live) = self.usable() {
            return Ok(live);
        }
        if self.attempts_done.load(Ordering::Acquire) != seen {
            if let Some(failure) = &attempts.last_failure {
                return Err(failure.clone());
            }
        }
        let outcome = self.replace().await;
        attempts.last_failure = outcome.as_ref().err().cloned();
        self.attempts_done.fetch_add(1, Ordering::AcqRel);
        outcome
    }

    pub(crate) fn use_for_requests(&self, channel: Arc<Channel>) {
        *self
            .direct_reply_channel
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(channel);
    }

    /// The live direct reply-to channel, if a direct reply inbox is open.
    pub(crate) fn direct_reply_channel(&self) -> Option<Arc<Channel>> {
        let direct = self
            .direct_reply_channel
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        direct
            .as_ref()
            .filter(|channel| channel.status().connected())
            .cloned()
    }

    fn usable(&self) -> Option<Live> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        current.as_ref().filter(|live| live.is_usable()).cloned()
    }

    /// Replaces what is dead: only the publishing channel when a channel error closed it (the
    /// consumers on the connection live on), else the whole connection.
    async fn replace(&self) -> Result<Live, TransportError> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        let live = match current.filter(|live| live.connection.status().connected()) {
            Some(live) => {
                let confirm = self.config.requests.confirm;
                let opening = live.open_publishing_channel(confirm);
                let publisher = Arc::new(self.within_timeout(opening).await?);
                tracing::debug!("publishing channel reopened");
                Live { publisher, ..live }
            }
            None => self.open().await?,
        };
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(live.clone());
        Ok(live)
    }

    async fn within_timeout<T>(
        &self,
        operation: impl std::future::Future<Output = Result<T, TransportError>>,
    ) -> Result<T, TransportError> {
        tokio::time::timeout(self.config.connect_timeout, operation)
            .await
            .map_err(|_| TransportError::Timeout {
                operation: "opening a channel".to_owned(),
            })?
    }

    /// One round of connection attempts over the addresses, from where the last connection
    /// leaves off; the first that answers wins. Each attempt is bounded by the connect
    /// timeout; when none answers, the error names every address tried and why it failed.
    async fn open(&self) -> Result<Live, TransportError> {
        let mut failures = Vec::with_capacity(self.addresses.len());
        for (index, url) in self.addresses.round() {
            let address = redact_url(url);
            match self.open_at(url).await {
                Ok((connection, publisher)) => {
                    self.addresses.connected(index);
                    follow_blocks(&connection, self.flow.clone());
                    if failures.is_empty() {
                        tracing::info!(%address, "connected to the broker");
                    } else {
                        // Said only here: when no address answers, the error says it all.
                        let skipped = describe(&failures);
                        tracing::warn!(%address, %skipped, "connected to the broker after other addresses did not answer");
                    }
                    return Ok(Live {
                        connection: Arc::new(connection),
                        publisher: Arc::new(publisher),
                        address: address.into(),
                    });
                }
                // Every address of a cluster knows the same users: no need to ask the next.
                Err(Failure::LoginRefused(reason)) => {
                    return Err(TransportError::AccessRefused { address, reason })
                }
                Err(Failure::Other(reason)) => failures.push((address, reason)),
            }
        }
        Err(unreachable(failures))
    }

    /// A connection to `url` and its publishing channel, or why there are none within the
    /// connect timeout (password scrubbed).
    async fn open_at(&self, url: &str) -> Result<(Connection, Channel), Failure> {
        let scrubbed = |reason: String| scrub(&reason, &self.config.url);
        let opening = async {
            let connection = self.connect(url).await.map_err(|error| {
                if is_login_refused(&error) {
                    Failure::LoginRefused(scrubbed(error.to_string()))
                } else {
                    Failure::Other(scrubbed(error.to_string()))
                }
            })?;
            let publisher = publishing_channel(&connection, self.config.requests.confirm)
                .await
                .map_err(|error| Failure::Other(scrubbed(error.to_string())))?;
            Ok((connection, publisher))
        };
        let timeout = self.config.connect_timeout;
        match tokio::time::timeout(timeout, opening).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::Other(format!("no answer within {timeout:?}"))),
        }
    }

    async fn connect(&self, url: &str) -> Result<Connection, lapin::Error> {
        let mut properties = ConnectionProperties::default();
        if let Some(name) = &self.config.connection_name {
            properties = properties.with_connection_name(name.clone().into());
        }
        let tls = OwnedTLSConfig {
            identity: None,
            cert_chain: self.config.tls_ca_pem.clone(),
        };
        let runtime = lapin::runtime::default_runtime()?;
        Connection::connect_with_config(url, properties, tls, runtime).await
    }
}

/// Why an address gave no connection.
enum Failure {
    /// The broker refused the user, password or vhost.
    LoginRefused(String),
    Other(String),
}

/// Follows the broker's `connection.blocked` and `connection.unblocked` on a new connection
/// into `flow`, until the connection ends. A new connection starts unblocked: the broker
/// says so again if its alarm still holds.
fn follow_blocks(connection: &Connection, flow: watch::Sender<Flow>) {
    flow.send_replace(Flow::Open);
    let mut events = connection.events_listener();
    tokio::spawn(async move {
        while let Some(event) = events.next().await {
            let now = match event {
                Event::ConnectionBlocked(reason) => Flow::Blocked { reason },
                Event::ConnectionUnblocked => Flow::Open,
                _ => continue,
            };
            tracing::debug!(?now, "the broker's flow control changed");
            flow.send_replace(now);
        }
    });
}

/// Every address tried and why it failed; one address keeps the single-broker form.
fn unreachable(failures: Vec<(String, String)>) -> TransportError {
    if let [(address, reason)] = failures.as_slice() {
        return TransportError::Unreachable {
            address: address.clone(),
            reason: reason.clone(),
        };
    }
    let reason = describe(&failures);
    let address = failures
        .into_iter()
        .map(|(address, _)| address)
        .collect::<Vec<_>>()
        .join(", ");
    TransportError::Unreachable { address, reason }
}

/// `host:port: reason; ...` for each address that failed.
fn describe(failures: &[(String, String)]) -> String {
    failures
        .iter()
        .map(|(address, reason)| format!("{}: {reason}", host_port(address)))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A new channel with publisher confirms on, if `confirm`.
async fn publishing_channel(
    connection: &Connection,
    confirm: bool,
) -> Result<Channel, TransportError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|error| translate(&error, ""))?;
    if !confirm {
        return Ok(channel);
    }
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|error| translate(&error, ""))?;
    Ok(channel)
}
