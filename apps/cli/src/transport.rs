//! Builds the transport the flags name. The only place the command line knows adapters.

use std::future::Future;
use std::path::Path;
use std::sync::Arc;

use fibrpc_amqp::{AmqpConfig, AmqpTransport, QueueKind, ReplyQueueMode, RequestQueueSpec};
use fibrpc_nats::{NatsConfig, NatsTransport};
use fibrpc_ports::{ReplyTransport, RequestTransport, TransportError};
use fibrpc_redis::{RedisConfig, RedisTransport};

use crate::args::{
    BrokerArgs, BrokerUrls, QueueType, ReplyToMode, RequestQueueArgs, TransportKind,
};

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

/// Connects a client: it declares no request queue, so it needs no queue settings.
pub async fn connect(broker: &BrokerArgs, reply_to: ReplyToMode) -> Result<Transport, String> {
    open(broker, reply_to, RequestQueueSpec::default()).await
}

/// Connects a server, which declares its request queue if it is missing, as `request_queue`
/// says. Bad combinations of flags are refused before connecting.
pub async fn connect_server(
    broker: &BrokerArgs,
    request_queue: &RequestQueueArgs,
) -> Result<Transport, String> {
    let given = request_queue.given();
    if broker.transport != TransportKind::Amqp && !given.is_empty() {
        return Err(format!(
            "{} apply to RabbitMQ queues only (--transport amqp)",
            given.join(", ")
        ));
    }
    let spec = request_queue_spec(request_queue)?;
    open(broker, ReplyToMode::Exclusive, spec).await
}

/// The AMQP settings of a server, or of the bench's queue administration: the request queue
/// declared, if missing, as the flags say.
pub fn amqp_server_config(
    urls: &BrokerUrls,
    reply_to: ReplyToMode,
    request_queue: &RequestQueueArgs,
) -> Result<AmqpConfig, String> {
    Ok(AmqpConfig {
        request_queue: request_queue_spec(request_queue)?,
        ..amqp_config(urls, reply_to, None)?
    })
}

/// Makes sure `queue` exists on RabbitMQ, declared as the flags say if it is missing.
pub async fn declare_amqp_request_queue(
    urls: &BrokerUrls,
    queue: &str,
    request_queue: &RequestQueueArgs,
) -> Result<(), String> {
    let config = amqp_server_config(urls, ReplyToMode::Exclusive, request_queue)?;
    let admin = AmqpTransport::connect(config)
        .await
        .map_err(|error| error.to_string())?;
    admin
        .declare_request_queue(queue)
        .await
        .map_err(|error| error.to_string())
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

async fn open(
    broker: &BrokerArgs,
    reply_to: ReplyToMode,
    request_queue: RequestQueueSpec,
) -> Result<Transport, String> {
    match broker.transport {
        TransportKind::Amqp => {
            let config = AmqpConfig {
                request_queue,
                ..amqp_config(&broker.urls, reply_to, broker.tls_ca.as_deref())?
            };
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
        TransportKind::Redis => {
            let transport = RedisTransport::connect(redis_config(&broker.urls))
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

pub fn redis_config(urls: &BrokerUrls) -> RedisConfig {
    RedisConfig {
        url: urls.redis_url.clone(),
        ..RedisConfig::default()
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

impl AdminTransport for RedisTransport {
    type Config = RedisConfig;

    fn open(config: RedisConfig) -> impl Future<Output = Result<Self, TransportError>> + Send {
        RedisTransport::connect(config)
    }
    fn declare(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.declare_request_queue(queue)
    }
    fn delete(&self, queue: &str) -> impl Future<Output = Result<(), TransportError>> + Send {
        self.delete_queue(queue)
    }
}
