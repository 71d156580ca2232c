use async_trait::async_trait;
use fibrpc_conformance::{Connection, Guarantee, TransportFactory};
use fibrpc_ports::TransportError;
use fibrpc_redis::{RedisConfig, RedisTransport};
use fibrpc_test_support::{skip_or_fail, unique};

/// The local Redis under test. The connections it hands out carry a client name of their own
/// (`CLIENT SETNAME`), so that a test can sever exactly them; its admin connection has
/// another, and survives.
pub struct RedisFactory {
    config: RedisConfig,
    admin: RedisTransport,
}

impl RedisFactory {
    /// The factory, or None (with the reason printed) when Redis cannot be reached, except
    /// with CI=true, where that fails the test.
    pub async fn new_or_skip() -> Option<Self> {
        let name = unique("fibrpc-test");
        let config = RedisConfig {
            url: std::env::var("REDIS_URL").unwrap_or_else(|_| RedisConfig::default().url),
            client_name: name.clone(),
            ..RedisConfig::default()
        };
        let admin_config = RedisConfig {
            client_name: format!("{name}-admin"),
            ..config.clone()
        };
        match RedisTransport::connect(admin_config).await {
            Ok(admin) => Some(Self { config, admin }),
            Err(error) => {
                skip_or_fail(
                    "Redis",
                    error,
                    "start it with `redis-server --save '' --appendonly no --daemonize yes`",
                );
                None
            }
        }
    }

    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// The connection that declares and deletes queues for the tests.
    pub fn admin(&self) -> &RedisTransport {
        &self.admin
    }
}

#[async_trait]
impl TransportFactory for RedisFactory {
    async fn connect(&self) -> Result<Connection, TransportError> {
        Ok(Connection::new(
            RedisTransport::connect(self.config.clone()).await?,
        ))
    }

    async fn declare_queue(&self, name: &str) -> Result<(), TransportError> {
        self.admin.declare_request_queue(name).await
    }

    async fn delete_queue(&self, name: &str) {
        if let Err(error) = self.admin.delete_queue(name).await {
            eprintln!("could not delete queue {name}: {error}");
        }
    }

    /// Kills (`CLIENT KILL`) every connection this factory's transports opened, found by
    /// their client name; other tests' connections are untouched.
    async fn sever_connections(&self) -> bool {
        self.admin
            .kill_clients_named(&self.config.client_name)
            .await
            .is_ok_and(|killed| killed > 0)
    }

    /// Redis lacks none: redelivery comes from the consumer group's pending entries (put back
    /// by a consumer that drops them, taken over from one that died after `claim_after`), the
    /// prefetch limit is the adapter's count of unsettled entries per consumer, expiry is the
    /// consumer dropping entries past their deadline, and both kinds of `NoSuchQueue` are
    /// checked by the server (`XADD NOMKSTREAM`; an inbox's marker key in a script).
    fn lacks(&self, _: Guarantee) -> Option<&'static str> {
        None
    }
}
