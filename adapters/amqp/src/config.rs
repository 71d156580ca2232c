//! The adapter's settings.

use std::time::Duration;

/// Where replies come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyQueueMode {
    /// One exclusive, auto-delete, server-named queue per connection: the tutorial's callback
    /// queue. Replies wait in it; the default.
    #[default]
    Exclusive,
    /// RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`): no queue at all, but replies are
    /// at-most-once and dropped if the caller is gone. Each inbox has a channel of its own, and
    /// requests go out on the newest one: one open inbox per transport.
    Direct,
}

/// How to reach RabbitMQ and how to use it. `Debug` shows the URL with its password hidden.
#[derive(Clone)]
pub struct AmqpConfig {
    /// `amqp://user:password@host:port/vhost` or `amqps://...`; or a comma-separated list of
    /// the nodes of one cluster, connected to in turn (see [`parse_addresses`] for the rules):
    /// the first that answers, and after a loss the next one, round the list.
    ///
    /// [`parse_addresses`]: crate::parse_addresses
    pub url: String,
    /// Try the addresses in a random order (drawn once per transport) instead of the order
    /// given, so that many clients spread over the nodes.
    pub shuffle_addresses: bool,
    /// Where replies come to; see [`ReplyQueueMode`].
    pub reply_queue: ReplyQueueMode,
    /// Declare request queues durable (production); the tutorial's are not.
    pub durable_queues: bool,
    /// Bounds each connection attempt, first or after a loss, from TCP to the first channel;
    /// with several addresses, the attempt at each of them.
    pub connect_timeout: Duration,
    /// PEM certificates to trust for `amqps://` beside the system's (a private CA).
    pub tls_ca_pem: Option<String>,
    /// Shown in the broker's connection list; lets operators (and tests) find this client.
    pub connection_name: Option<String>,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: "amqp://127.0.0.1:5672/%2f".to_owned(),
            shuffle_addresses: false,
            reply_queue: ReplyQueueMode::Exclusive,
            durable_queues: false,
            connect_timeout: Duration::from_secs(5),
            tls_ca_pem: None,
            connection_name: None,
        }
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &crate::redact_url(&self.url))
            .field("shuffle_addresses", &self.shuffle_addresses)
            .field("reply_queue", &self.reply_queue)
            .field("durable_queues", &self.durable_queues)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(|_| "<pem>"))
            .field("connection_name", &self.connection_name)
            .finish()
    }
}
