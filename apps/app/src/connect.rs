//! A URL to a connection: the scheme chooses the adapter, the rest of the URL is the adapter's.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use fibrpc_amqp::{
    AmqpConfig, AmqpTransport, QueueSpecError, ReplyQueueMode, RequestGuarantees, RequestQueueSpec,
};
use fibrpc_in_memory::InMemoryBroker;
use fibrpc_nats::{NatsConfig, NatsTransport};
use fibrpc_ports::{Connection, TransportError};
use fibrpc_redis::{RedisConfig, RedisTransport};

use crate::transports::{transport_of, Transport};
use crate::ReplyToMode;

/// What a URL does not say: settings some transports read. The default suits a client and a
/// server alike.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// PEM CA certificates to trust for `amqps://`, besides the system's.
    pub tls_ca_pem: Option<String>,
    /// Where replies come to (AMQP).
    pub reply_to: ReplyToMode,
    /// How a server declares its request queue if it is missing (AMQP; the other transports
    /// refuse anything but the default).
    pub request_queue: RequestQueueSpec,
    /// Try a cluster's addresses in a random order (AMQP).
    pub shuffle_addresses: bool,
    /// The name the broker shows for the connection (AMQP).
    pub connection_name: Option<String>,
    /// What the broker does for each request, all on by default (AMQP; the other transports
    /// refuse anything but the default).
    pub guarantees: RequestGuarantees,
}

/// Why [`connect`] gave no connection.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL's scheme names no transport (its password is not shown).
    #[error(
        "{url}: not a broker URL fibrpc knows (amqp://, amqps://, nats://, redis://, memory://)"
    )]
    UnknownScheme { url: String },
    /// Request queue settings given to a transport that does not read them.
    #[error(
        "request queue settings (type, durability, dead-lettering, delivery limit) apply only \
         to AMQP, not to {transport}"
    )]
    QueueSpecUnsupported { transport: &'static str },
    /// Request guarantees turned off on a transport that does not read them.
    #[error(
        "turning off confirms, mandatory or expiration applies only to AMQP, not to {transport}"
    )]
    GuaranteesUnsupported { transport: &'static str },
    /// Request queue settings that contradict each other.
    #[error(transparent)]
    QueueSpec(#[from] QueueSpecError),
    /// The adapter could not connect.
    #[error(transparent)]
    Transport(#[from] TransportError),
}

/// Connects to the broker `url` names, with the default options: `amqp://` or `amqps://`
/// (RabbitMQ; a comma-separated list of a cluster's nodes too), `nats://`, `redis://`, or
/// `memory://[name]` (an in-process broker, one per name, shared by the whole process).
///
/// # Errors
/// [`ConnectError::UnknownScheme`] for another scheme; the adapter's `TransportError`
/// (`Unreachable`, `Refused`) when it cannot connect.
pub async fn connect(url: &str) -> Result<Connection, ConnectError> {
    connect_with(url, &ConnectOptions::default()).await
}

/// [`connect`] with options.
///
/// # Errors
/// As [`connect`]; and [`ConnectError::QueueSpecUnsupported`] or
/// [`ConnectError::QueueSpec`] for request queue settings the transport cannot honour.
pub async fn connect_with(url: &str, options: &ConnectOptions) -> Result<Connection, ConnectError> {
    let transport = transport_of(url).ok_or_else(|| ConnectError::UnknownScheme {
        url: fibrpc_ports::redact::redact_urls(url, fibrpc_ports::redact::LoneUser::Token),
    })?;
    if !transport.takes_queue_spec && options.request_queue != RequestQueueSpec::default() {
        return Err(ConnectError::QueueSpecUnsupported {
            transport: transport.name,
        });
    }
    if transport.name != "amqp" && options.guarantees != RequestGuarantees::default() {
        return Err(ConnectError::GuaranteesUnsupported {
            transport: transport.name,
        });
    }
    by_transport(transport, url, options).await
}

async fn by_transport(
    transport: &Transport,
    url: &str,
    options: &ConnectOptions,
) -> Result<Connection, ConnectError> {
    let url = url.trim().to_owned();
    Ok(match transport.name {
        "amqp" => {
            options.request_queue.validate()?;
            let config = AmqpConfig {
                url,
                shuffle_addresses: options.shuffle_addresses,
                reply_queue: match options.reply_to {
                    ReplyToMode::Queue => ReplyQueueMode::Resumable,
                    ReplyToMode::Exclusive => ReplyQueueMode::Exclusive,
                    ReplyToMode::Direct => ReplyQueueMode::Direct,
                },
                tls_ca_pem: options.tls_ca_pem.clone(),
                connection_name: options.connection_name.clone(),
                request_queue: options.request_queue.clone(),
                requests: options.guarantees,
                ..AmqpConfig::default()
            };
            Connection::new(AmqpTransport::connect(config).await?)
        }
        "nats" => {
            let config = NatsConfig {
                url,
                ..NatsConfig::default()
            };
            Connection::new(NatsTransport::connect(config).await?)
        }
        "redis" => {
            let config = RedisConfig {
                url,
                ..RedisConfig::default()
            };
            Connection::new(RedisTransport::connect(config).await?)
        }
        _ => {
            let name = url.split_once("://").map_or("", |(_, name)| name);
            Connection::new(memory_broker(name).connect())
        }
    })
}

/// The in-process broker `memory://<name>` connects to: one per name, for the whole process.
pub fn memory_broker(name: &str) -> InMemoryBroker {
    static BROKERS: LazyLock<Mutex<HashMap<String, InMemoryBroker>>> =
        LazyLock::new(Default::default);
    let mut brokers = BROKERS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    brokers.entry(name.to_owned()).or_default().clone()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fibrpc_fib::Fib;
    use fibrpc_rpc::{ClientConfig, RpcClient, RpcServer, ServerConfig};

    use super::*;

    #[tokio::test]
    async fn a_memory_url_connects_both_sides_of_one_broker() {
        let queue = "connect_test_queue";
        let server_side = connect("memory://by-url").await.unwrap();
        server_side
            .admin
            .declare_request_queue(queue)
            .await
            .unwrap();
        let config = ServerConfig {
            queue: queue.to_owned(),
            ..ServerConfig::default()
        };
        let service = Fib::service(Default::default());
        let server = RpcServer::new(server_side.replies, config, service).spawn();
        let client_side = connect("memory://by-url").await.unwrap();
        let config = ClientConfig {
            queue: queue.to_owned(),
            ..ClientConfig::default()
        };
        let client = RpcClient::connect(client_side.requests, config)
            .await
            .unwrap();
        assert_eq!(client.call::<Fib>(10).await.unwrap().to_string(), "55");
        server.stop().await.unwrap();
        // Another name is another broker: the queue is not there.
        let other = connect("memory://elsewhere").await.unwrap();
        assert!(other.admin.queue_depth(queue).await.is_err());
        drop(Arc::clone(&client_side.admin));
    }

    #[tokio::test]
    async fn an_unknown_scheme_is_refused_without_its_password() {
        let error = connect("http://user:secret@example.org")
            .await
            .err()
            .unwrap();
        assert!(
            matches!(error, ConnectError::UnknownScheme { .. }),
            "{error}"
        );
        assert!(!error.to_string().contains("secret"), "{error}");
    }

    #[tokio::test]
    async fn guarantees_are_refused_where_they_would_be_ignored() {
        let options = ConnectOptions {
            guarantees: RequestGuarantees {
                confirm: false,
                ..RequestGuarantees::default()
            },
            ..ConnectOptions::default()
        };
        let error = connect_with("memory://", &options).await.err().unwrap();
        assert!(
            matches!(
                error,
                ConnectError::GuaranteesUnsupported {
                    transport: "memory"
                }
            ),
            "{error}"
        );
    }

    #[tokio::test]
    async fn queue_settings_are_refused_where_they_would_be_ignored() {
        let options = ConnectOptions {
            request_queue: RequestQueueSpec {
                durable: true,
                ..RequestQueueSpec::default()
            },
            ..ConnectOptions::default()
        };
        let error = connect_with("memory://", &options).await.err().unwrap();
        assert!(
            matches!(
                error,
                ConnectError::QueueSpecUnsupported {
                    transport: "memory"
                }
            ),
            "{error}"
        );
    }
}
