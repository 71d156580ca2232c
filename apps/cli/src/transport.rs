//! Builds the transport the flags name. The only place the command line knows adapters.

use std::sync::Arc;

use fibrpc_amqp::{AmqpConfig, AmqpTransport, ReplyQueueMode};
use fibrpc_nats::{NatsConfig, NatsTransport};
use fibrpc_ports::{ReplyTransport, RequestTransport};

use crate::args::{BrokerArgs, ReplyToMode, TransportKind};

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
            let tls_ca_pem = match &broker.tls_ca {
                Some(path) => Some(std::fs::read_to_string(path).map_err(|error| {
                    format!("cannot read the CA file {}: {error}", path.display())
                })?),
                None => None,
            };
            let config = AmqpConfig {
                url: broker.urls.amqp_url.clone(),
                reply_queue: match reply_to {
                    ReplyToMode::Exclusive => ReplyQueueMode::Exclusive,
                    ReplyToMode::Direct => ReplyQueueMode::Direct,
                },
                durable_queues: broker.durable,
                tls_ca_pem,
                connection_name: Some(format!("fibrpc {}", std::process::id())),
                ..AmqpConfig::default()
            };
            let transport = AmqpTransport::connect(config)
                .await
                .map_err(|error| error.to_string())?;
            Ok(Transport::new(transport))
        }
        TransportKind::Nats => {
            let config = NatsConfig {
                url: broker.urls.nats_url.clone(),
                ..NatsConfig::default()
            };
            let transport = NatsTransport::connect(config)
                .await
                .map_err(|error| error.to_string())?;
            Ok(Transport::new(transport))
        }
    }
}
