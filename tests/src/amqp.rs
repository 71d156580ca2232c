use std::time::Duration;

use async_trait::async_trait;
use fibrpc_amqp::{AmqpConfig, AmqpTransport, ReplyQueueMode};
use fibrpc_conformance::{Connection, Guarantee, TransportFactory};
use fibrpc_ports::{QueueAdmin, TransportError};
use fibrpc_test_support::{in_ci, rabbitmq, skip_or_fail, unique};

/// The local RabbitMQ under test. Its connections carry a name of their own, so that a test
/// can sever exactly them and leave other tests' connections alone.
pub struct AmqpFactory {
    config: AmqpConfig,
    /// Declares and deletes queues for the tests.
    admin: AmqpTransport,
}

impl AmqpFactory {
    /// The factory, or None (with the reason printed) when no broker answers, except with
    /// CI=true, where a missing broker fails the test: broker tests run there for real.
    pub async fn new_or_skip() -> Option<Self> {
        Self::with_reply_queue(ReplyQueueMode::Exclusive).await
    }

    pub async fn with_reply_queue(reply_queue: ReplyQueueMode) -> Option<Self> {
        let config = AmqpConfig {
            url: std::env::var("AMQP_URL").unwrap_or_else(|_| AmqpConfig::default().url),
            reply_queue,
            connection_name: Some(unique("fibrpc-test")),
            ..AmqpConfig::default()
        };
        match AmqpTransport::connect(config.clone()).await {
            Ok(admin) => Some(Self { config, admin }),
            Err(error) => {
                skip_or_fail(
                    "RabbitMQ",
                    error,
                    "start it with `rabbitmq-server -detached`",
                );
                None
            }
        }
    }

    pub fn config(&self) -> &AmqpConfig {
        &self.config
    }

    pub fn admin(&self) -> &AmqpTransport {
        &self.admin
    }
}

#[async_trait]
impl TransportFactory for AmqpFactory {
    async fn connect(&self) -> Result<Connection, TransportError> {
        Ok(Connection::new(
            AmqpTransport::connect(self.config.clone()).await?,
        ))
    }

    fn admin(&self) -> &dyn QueueAdmin {
        &self.admin
    }

    /// Closes, through `rabbitmqctl`, every broker connection this factory opened; false
    /// (which fails the check) when none was found or `rabbitmqctl` failed, said why.
    async fn sever_connections(&self) -> bool {
        let Some(name) = &self.config.connection_name else {
            return false;
        };
        match rabbitmq::sever_connections_named(name).await {
            Ok(closed) => closed > 0,
            Err(error) => {
                eprintln!("cannot sever the connections named {name}: {error}");
                false
            }
        }
    }

    /// RabbitMQ requeues a consumer's unacknowledged requests as soon as its connection
    /// closes, which the kernel does when the process dies. It never redelivers to another
    /// while the consumer's channel lives (its `consumer_timeout`, 30 min by default, closes
    /// the channel instead), so the hold check passes for any length.
    fn redelivery_timeout(&self) -> Duration {
        Duration::from_secs(1)
    }

    fn lacks(&self, guarantee: Guarantee) -> Option<&'static str> {
        match guarantee {
            // Outside CI only: there the checks of a lost connection must run.
            Guarantee::SeverableConnections if !in_ci() && !rabbitmq::have_rabbitmqctl() => {
                Some("rabbitmqctl cannot be run here (it severs the connections)")
            }
            Guarantee::NoSuchQueueOnReply => Some(
                "a reply goes out on the channel that delivered its request, ahead of the ack \
                 and without publisher confirms, so a reply to a vanished queue is dropped by \
                 the broker, not refused (the adapter's own tests check send_reply, which \
                 confirms)",
            ),
            _ => None,
        }
    }
}
