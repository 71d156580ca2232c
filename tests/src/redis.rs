use std::time::Duration;

use async_trait::async_trait;
use fibrpc_conformance::{Connection, Guarantee, TransportFactory};
use fibrpc_ports::{QueueAdmin, TransportError};
use fibrpc_redis::{RedisConfig, RedisTransport};
use fibrpc_test_support::{skip_or_fail, unique};

/// How long a killed consumer's requests wait before another claims them, in the tests.
const CLAIM_AFTER: Duration = Duration::from_secs(2);

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
            // Short, so that the checks that wait it out take seconds.
            claim_after: CLAIM_AFTER,
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

    fn admin(&self) -> &dyn QueueAdmin {
        &self.admin
    }

    /// Kills (`CLIENT KILL`) every connection this factory's transports opened, found by
    /// their client name; other tests' connections are untouched.
    async fn sever_connections(&self) -> bool {
        let name = &self.config.client_name;
        match self.admin.kill_clients_named(name).await {
            Ok(killed) => killed > 0,
            Err(error) => {
                eprintln!("cannot kill the clients named {name}: {error}");
                false
            }
        }
    }

    /// An entry with no body, as a foreign client could add.
    async fn send_malformed(&self, queue: &str) -> bool {
        let client = redis::Client::open(self.config.url.as_str()).expect("a Redis URL");
        let mut connection = client
            .get_multiplexed_async_connection()
            .await
            .expect("cannot connect to Redis");
        let _: String = redis::cmd("XADD")
            .arg(fibrpc_redis::stream_key(queue))
            .arg("*")
            .arg("correlation_id")
            .arg("no-body")
            .query_async(&mut connection)
            .await
            .expect("cannot add the malformed entry");
        true
    }

    /// A killed server's entries are claimed by another after `claim_after`; a live one
    /// renews what it holds well within it.
    fn redelivery_timeout(&self) -> Duration {
        CLAIM_AFTER
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
