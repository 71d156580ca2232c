//! The connection to the broker, replaced by a new one on first use after it is lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use fibrpc_ports::TransportError;
use lapin::options::ConfirmSelectOptions;
use lapin::tcp::OwnedTLSConfig;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::{Mutex, Semaphore};

use crate::errors::translate;
use crate::redact::scrub;
use crate::{redact_url, AmqpConfig};

/// A live connection and its publishing channel (publisher confirms on). Cheap to clone:
/// every request and reply takes one, and a lapin `Channel` is a dozen reference counts.
#[derive(Clone)]
pub(crate) struct Live {
    pub connection: Arc<Connection>,
    pub publisher: Arc<Channel>,
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

    /// A new channel with publisher confirms on.
    pub(crate) async fn open_confirmed_channel(&self) -> Result<Channel, TransportError> {
        confirmed_channel(&self.connection).await
    }
}

/// The outcome of the latest reconnection attempt, shared with the callers that waited for it.
#[derive(Default)]
struct Attempts {
    last_failure: Option<TransportError>,
}

pub(crate) struct Link {
    config: AmqpConfig,
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
}

/// Publishes per connection awaiting their confirm at most; past it, publishers wait.
const MAX_UNCONFIRMED_PUBLISHES: usize = 4096;

impl Link {
    pub(crate) fn new(config: AmqpConfig) -> Self {
        Self {
            config,
            current: RwLock::new(None),
            direct_reply_channel: RwLock::new(None),
            reconnecting: Mutex::new(Attempts::default()),
            attempts_done: AtomicU64::new(0),
            unconfirmed: Arc::new(Semaphore::new(MAX_UNCONFIRMED_PUBLISHES)),
        }
    }

    pub(crate) fn unconfirmed_publishes(&self) -> &Arc<Semaphore> {
        &self.unconfirmed
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
                let publisher = Arc::new(self.within_timeout(live.open_confirmed_channel()).await?);
                tracing::debug!("publishing channel reopened");
                Live {
                    connection: live.connection,
                    publisher,
                }
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

    /// One connection attempt, bounded by the connect timeout as a whole.
    async fn open(&self) -> Result<Live, TransportError> {
        let address = redact_url(&self.config.url);
        let unreachable = |reason: String| TransportError::Unreachable {
            address: address.clone(),
            reason: scrub(&reason, &self.config.url),
        };
        let opening = async {
            let connection = self
                .connect()
                .await
                .map_err(|error| unreachable(error.to_string()))?;
            let publisher = Arc::new(confirmed_channel(&connection).await?);
            Ok(Live {
                connection: Arc::new(connection),
                publisher,
            })
        };
        let live = tokio::time::timeout(self.config.connect_timeout, opening)
            .await
            .map_err(|_| {
                unreachable(format!(
                    "no answer within {:?}",
                    self.config.connect_timeout
                ))
            })??;
        tracing::info!(%address, "connected to the broker");
        Ok(live)
    }

    async fn connect(&self) -> Result<Connection, lapin::Error> {
        let mut properties = ConnectionProperties::default();
        if let Some(name) = &self.config.connection_name {
            properties = properties.with_connection_name(name.clone().into());
        }
        let tls = OwnedTLSConfig {
            identity: None,
            cert_chain: self.config.tls_ca_pem.clone(),
        };
        let runtime = lapin::runtime::default_runtime()?;
        Connection::connect_with_config(&self.config.url, properties, tls, runtime).await
    }
}

/// A new channel with publisher confirms on.
async fn confirmed_channel(connection: &Connection) -> Result<Channel, TransportError> {
    let channel = connection
        .create_channel()
        .await
        .map_err(|error| translate(&error, ""))?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|error| translate(&error, ""))?;
    Ok(channel)
}
