//! The adapter's settings.

use std::time::Duration;

/// Where replies come to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplyQueueMode {
    /// A queue of the client's naming (`fibrpc.reply.<uuid>`) that outlives a lost connection
    /// for [`AmqpConfig::reply_queue_expires`]: the client consumes it again once back, with
    /// the replies sent meanwhile, so calls in flight go on waiting instead of failing. The
    /// client deletes it when it closes; the broker, when unused that long. The default.
    #[default]
    Resumable,
    /// One exclusive, auto-delete, server-named queue per connection: the tutorial's callback
    /// queue. Replies wait in it, but it dies with its connection: a lost connection fails
    /// the calls in flight.
    Exclusive,
    /// RabbitMQ's direct reply-to (`amq.rabbitmq.reply-to`): no queue at all, but replies are
    /// at-most-once and dropped if the caller is gone. Each inbox has a channel of its own, and
    /// requests go out on the newest one: one open inbox per transport.
    Direct,
}

/// The kind of a request queue the adapter declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueKind {
    /// RabbitMQ's classic queue, as the tutorial declares it; the default.
    #[default]
    Classic,
    /// A replicated quorum queue (`x-queue-type: quorum`): always durable, counts deliveries,
    /// so it can set aside a request that keeps failing (`delivery_limit`).
    Quorum,
}

/// How a request queue that does not exist yet is declared. An existing queue is used as it
/// is, whatever its kind and arguments: whoever made it (an operator, a policy, another
/// program's server) decided them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestQueueSpec {
    /// Classic (the default) or quorum.
    pub kind: QueueKind,
    /// Survives a broker restart. A quorum queue is durable whatever this says.
    pub durable: bool,
    /// Where requests go when dead-lettered (`x-dead-letter-exchange`): past the delivery
    /// limit, expired, or rejected without requeue.
    pub dead_letter_exchange: Option<String>,
    /// Quorum queues only (`x-delivery-limit`): a request returned to the queue more than this
    /// many times (its server died or gave it back) is dead-lettered, or dropped without a
    /// dead-letter exchange, instead of being delivered again forever.
    pub delivery_limit: Option<u32>,
}

/// Settings of a request queue that no broker would accept, or that would do harm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueueSpecError {
    #[error("a delivery limit needs a quorum queue (RabbitMQ counts deliveries only there)")]
    DeliveryLimitNeedsQuorum,
    #[error(
        "the dead-letter exchange needs a name (the default exchange would route a \
         dead-lettered request back to its own queue)"
    )]
    UnnamedDeadLetterExchange,
}

impl RequestQueueSpec {
    /// Checks the settings before anything is sent to the broker.
    ///
    /// # Errors
    /// [`QueueSpecError::DeliveryLimitNeedsQuorum`] for a delivery limit on a classic queue
    /// (RabbitMQ refuses the declare); [`QueueSpecError::UnnamedDeadLetterExchange`] for an
    /// empty exchange name.
    pub fn validate(&self) -> Result<(), QueueSpecError> {
        if self.delivery_limit.is_some() && self.kind != QueueKind::Quorum {
            return Err(QueueSpecError::DeliveryLimitNeedsQuorum);
        }
        if self
            .dead_letter_exchange
            .as_deref()
            .is_some_and(|exchange| exchange.trim().is_empty())
        {
            return Err(QueueSpecError::UnnamedDeadLetterExchange);
        }
        Ok(())
    }

    /// Whether the queue is declared durable: asked for, or implied by its kind.
    pub fn is_durable(&self) -> bool {
        self.durable || self.kind == QueueKind::Quorum
    }
}

/// What the broker is asked to do for each request the client publishes: each is on by
/// default, and each costs something (docs/performance.md, "What each guarantee costs").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestGuarantees {
    /// Publisher confirms: a request counts as sent once the broker confirmed it, and a
    /// negative confirm fails its call. Off, a request the broker loses (a crash, a full
    /// queue's overflow) shows only as the call's timeout; and a request to a missing queue
    /// too, since lapin hands a `basic.return` to user code only with its confirm.
    pub confirm: bool,
    /// `mandatory`: a request no queue takes comes back, and its call fails at once with
    /// `NoSuchQueue` (with `confirm`). Off, the broker drops it and the call times out.
    pub mandatory: bool,
    /// The call's deadline as the request's `expiration`: the broker drops a request nobody
    /// waits for any more, and the server skips one taken late. Off, the request carries no
    /// deadline: a late one is still handled, its reply dropped by the caller.
    pub expiration: bool,
}

impl Default for RequestGuarantees {
    fn default() -> Self {
        Self {
            confirm: true,
            mandatory: true,
            expiration: true,
        }
    }
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
    /// How long a resumable reply queue lives unused (no consumer: its client disconnected
    /// or died) before the broker deletes it (`x-expires`). A connection lost for longer
    /// loses the replies sent meanwhile; its calls then fail.
    pub reply_queue_expires: Duration,
    /// How the server side declares a request queue that does not exist yet.
    pub request_queue: RequestQueueSpec,
    /// Bounds each connection attempt, first or after a loss, from TCP to the first channel;
    /// with several addresses, the attempt at each of them.
    pub connect_timeout: Duration,
    /// PEM certificates to trust for `amqps://` beside the system's (a private CA).
    pub tls_ca_pem: Option<String>,
    /// Shown in the broker's connection list; lets operators (and tests) find this client.
    pub connection_name: Option<String>,
    /// What the broker does for each request; see [`RequestGuarantees`].
    pub requests: RequestGuarantees,
}

impl Default for AmqpConfig {
    fn default() -> Self {
        Self {
            url: "amqp://127.0.0.1:5672/%2f".to_owned(),
            shuffle_addresses: false,
            reply_queue: ReplyQueueMode::Resumable,
            reply_queue_expires: Duration::from_secs(60),
            request_queue: RequestQueueSpec::default(),
            connect_timeout: Duration::from_secs(5),
            tls_ca_pem: None,
            connection_name: None,
            requests: RequestGuarantees::default(),
        }
    }
}

impl std::fmt::Debug for AmqpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AmqpConfig")
            .field("url", &crate::redact_url(&self.url))
            .field("shuffle_addresses", &self.shuffle_addresses)
            .field("reply_queue", &self.reply_queue)
            .field("reply_queue_expires", &self.reply_queue_expires)
            .field("request_queue", &self.request_queue)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls_ca_pem", &self.tls_ca_pem.as_ref().map(|_| "<pem>"))
            .field("connection_name", &self.connection_name)
            .field("requests", &self.requests)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_the_tutorials_queue() {
        let spec = RequestQueueSpec::default();
        assert_eq!(spec.kind, QueueKind::Classic);
        assert!(!spec.is_durable());
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn a_quorum_queue_is_durable_and_may_have_a_delivery_limit() {
        let spec = RequestQueueSpec {
            kind: QueueKind::Quorum,
            delivery_limit: Some(3),
            dead_letter_exchange: Some("dead".into()),
            ..RequestQueueSpec::default()
        };
        assert!(spec.is_durable());
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn bad_combinations_are_refused() {
        let classic_with_limit = RequestQueueSpec {
            durable: true,
            delivery_limit: Some(3),
            ..RequestQueueSpec::default()
        };
        assert_eq!(
            classic_with_limit.validate(),
            Err(QueueSpecError::DeliveryLimitNeedsQuorum)
        );
        let unnamed = RequestQueueSpec {
            dead_letter_exchange: Some(String::new()),
            ..RequestQueueSpec::default()
        };
        assert_eq!(
            unnamed.validate(),
            Err(QueueSpecError::UnnamedDeadLetterExchange)
        );
    }
}
