//! Builds the transport the flags name. The only place the command line knows adapters.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use fibrpc_amqp::{AmqpConfig, AmqpTransport, ReplyQueueMode};
use fibrpc_nats::{NatsConfig, NatsTransport};
use fibrpc_ports::{ReplyTransport, RequestTransport, TransportError};

use crate::args::{BrokerArgs, BrokerUrls, ReplyToMode, TransportKind};

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

pub async fn connect(broker: &BrokerArgs, reply_to: ReplyToMode) -> Result<Transport, String> {
    match broker.transport {
        TransportKind::Amqp => {
            let mut config = amqp_config(&broker.urls, reply_to, broker.tls_ca.as_deref())?;
            config.durable_queues = broker.durable;
            let transport = AmqpTransport::connect(config)
                .await
                .map_err(|error| error.to_string())?;
            Ok(Transport::new(transport))
        }
        TransportKind::Nats => {
            let transport = NatsTransport::connect(nats_config(&broker.urls))
                .await
                .map_err(|error| error.to_string())?;
            Ok(Transport::new(transport))
        }
    }
}

/// The AMQP settings the flags give.
pub fn amqp_config(
    urls: &BrokerUrls,
    reply_to: ReplyToMode,
    tls_ca: Option<&Path>,
) -> Result<AmqpConfig, String> {
    let tls_ca_pem = match tls_ca {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|error| format!("cannot read the CA file {}: {error}", path.display()))?,
        ),
        None => None,
    };
    Ok(AmqpConfig {
        url: urls.amqp_url.clone(),
        shuffle_addresses: urls.amqp_shuffle,
        reply_queue: match reply_to {
            ReplyToMode::Exclusive => ReplyQueueMode::Exclusive,
            ReplyToMode::Direct => ReplyQueueMode::Direct,
        },
        tls_ca_pem,
        connection_name: Some(format!("fibrpc {}", std::process::id())),
        ..AmqpConfig::default()
    })
}

pub fn nats_config(urls: &BrokerUrls) -> NatsConfig {
    NatsConfig {
        url: urls.nats_url.clone(),
        ..NatsConfig::default()
    }
}

/// A broker connection that can also make and remove request queues, as `fibrpc bench` does
/// for the queue of its run.
pub trait AdminTransport: RequestTransport + ReplyTransport + Clone + Sized + 'static {
    type Config: Clone + Send;

    fn open(config: Self::Config) -> impl Future<Output = Result<Self, TransportError>> + Send;
    fn declare(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send;
    fn delete(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send;
}

impl AdminTransport for AmqpTransport {
    type Config = AmqpConfig;

    fn open(config: AmqpConfig) -> impl Future<Output = Result<Self, TransportError>> + Send {
        AmqpTransport::connect(config)
    }
    fn declare(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.declare_request_queue(queue)
    }
    fn delete(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.delete_queue(queue)
    }
}

impl AdminTransport for NatsTransport {
    type Config = NatsConfig;

    fn open(config: NatsConfig) -> impl Future<Output = Result<Self, TransportError>> + Send {
        NatsTransport::connect(config)
    }
    fn declare(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.declare_request_queue(queue)
    }
    fn delete(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.delete_queue(queue)
    }
}
