//! The connection to the broker, replaced by a new one on first use after it is lost.

use std::sync::{Arc, RwLock};

use fibrpc_ports::TransportError;
use lapin::options::ConfirmSelectOptions;
use lapin::tcp::OwnedTLSConfig;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use crate::errors::translate;
use crate::redact::scrub;
use crate::{redact_url, AmqpConfig};

/// A live connection and its publishing channel (publisher confirms on).
#[derive(Clone)]
pub(crate) struct Live {
    pub connection: Arc<Connection>,
    pub publisher: Channel,
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
}

pub(crate) struct Link {
    config: AmqpConfig,
    current: RwLock<Option<Live>>,
    /// With direct reply-to, requests must go out on the channel that consumes the replies:
    /// the channel of the newest reply inbox.
    direct_reply_channel: RwLock<Option<Channel>>,
    /// Serialises reconnections so that a lost connection is replaced once, not by every
    /// caller that notices.
    reconnecting: Mutex<()>,
}

impl Link {
    pub(crate) fn new(config: AmqpConfig) -> Self {
        Self {
            config,
            current: RwLock::new(None),
            direct_reply_channel: RwLock::new(None),
            reconnecting: Mutex::new(()),
        }
    }

    pub(crate) fn config(&self) -> &AmqpConfig {
        &self.config
    }

    /// The live connection, opening a new one if there is none or it was lost.
    pub(crate) async fn live(&self) -> Result<Live, TransportError> {
        if let Some(live) = self.usable() {
            return Ok(live);
        }
        let _one_at_a_time = self.reconnecting.lock().await;
        if let Some(live) = self.usable() {
            return Ok(live);
        }
        let live = self.open().await?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(live.clone());
        Ok(live)
    }

    pub(crate) fn use_for_requests(&self, channel: Channel) {
        *self
            .direct_reply_channel
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(channel);
    }

    /// The channel requests go out on: the direct reply-to channel if there is one.
    pub(crate) fn request_channel(&self, live: &Live) -> Channel {
        let direct = self
            .direct_reply_channel
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match direct.as_ref() {
            Some(channel) if channel.status().connected() => channel.clone(),
            _ => live.publisher.clone(),
        }
    }

    pub(crate) async fn open_confirmed_channel(
        &self,
        live: &Live,
    ) -> Result<Channel, TransportError> {
        let channel = live.open_channel().await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|error| translate(&error, ""))?;
        Ok(channel)
    }

    fn usable(&self) -> Option<Live> {
        let current = self
            .current
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        current.as_ref().filter(|live| live.is_usable()).cloned()
    }

    async fn open(&self) -> Result<Live, TransportError> {
        let address = redact_url(&self.config.url);
        let unreachable = |reason: String| TransportError::Unreachable {
            address: address.clone(),
            reason: scrub(&reason, &self.config.url),
        };
        let mut properties = ConnectionProperties::default();
        if let Some(name) = &self.config.connection_name {
            properties = properties.with_connection_name(name.clone().into());
        }
        let tls = OwnedTLSConfig {
            identity: None,
            cert_chain: self.config.tls_ca_pem.clone(),
        };
        let runtime =
            lapin::runtime::default_runtime().map_err(|error| unreachable(error.to_string()))?;
        let connecting =
            Connection::connect_with_config(&self.config.url, properties, tls, runtime);
        let connection = tokio::time::timeout(self.config.connect_timeout, connecting)
            .await
            .map_err(|_| {
                unreachable(format!(
                    "no answer within {:?}",
                    self.config.connect_timeout
                ))
            })?
            .map_err(|error| unreachable(error.to_string()))?;
        let publisher = connection
            .create_channel()
            .await
            .map_err(|error| translate(&error, ""))?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|error| translate(&error, ""))?;
        tracing::info!(%address, "connected to the broker");
        Ok(Live {
            connection: Arc::new(connection),
            publisher,
        })
    }
}
