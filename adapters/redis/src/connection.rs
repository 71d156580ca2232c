//! The connections of one transport: one shared, multiplexed connection for the commands that
//! answer at once, opened again after it is lost; and a connection of their own for each
//! inbox and request stream, whose blocking reads would hold up everything behind them.

use std::sync::Mutex;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue, RedisError, RedisResult};

use fibrpc_ports::TransportError;

use crate::{errors, redact, RedisConfig};

pub(crate) struct Connections {
    client: redis::Client,
    address: String,
    url: String,
    name: String,
    connect_timeout: Duration,
    response_timeout: Duration,
    /// None until the first command, and again once a command found it lost.
    shared: Mutex<Option<MultiplexedConnection>>,
    /// One reconnection at a time; commands wait for it rather than each opening one.
    connecting: tokio::sync::Mutex<()>,
}

impl Connections {
    pub(crate) fn new(config: &RedisConfig) -> Result<Self, TransportError> {
        let address = redact(&config.url);
        if config.client_name.is_empty() || config.client_name.contains(char::is_whitespace) {
            return Err(errors::bad_name(&config.client_name));
        }
        let client = redis::Client::open(config.url.as_str())
            .map_err(|error| errors::bad_url(&address, &config.url, &error))?;
        Ok(Self {
            client,
            address,
            url: config.url.clone(),
            name: config.client_name.clone(),
            connect_timeout: config.connect_timeout,
            response_timeout: config.response_timeout,
            shared: Mutex::new(None),
            connecting: tokio::sync::Mutex::new(()),
        })
    }

    /// The shared connection, opened if there is none.
    pub(crate) async fn shared(&self) -> Result<MultiplexedConnection, TransportError> {
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let connection = self.open(Some(self.response_timeout)).await?;
        *self.slot() = Some(connection.clone());
        Ok(connection)
    }

    /// A new connection for blocking reads: no response timeout (the read's own `BLOCK`
    /// bounds it, and the caller adds a margin).
    pub(crate) async fn dedicated(&self) -> Result<MultiplexedConnection, TransportError> {
        self.open(None).await
    }

    /// Runs `command` on the shared connection.
    pub(crate) async fn run<T: FromRedisValue>(
        &self,
        command: &Cmd,
        what: &str,
    ) -> Result<T, TransportError> {
        let mut connection = self.shared().await?;
        let outcome = command.query_async(&mut connection).await;
        self.check(outcome, what)
    }

    /// `outcome` as a `TransportError`; a lost connection, on any connection of this
    /// transport, makes the next command open a new shared one: a lost connection is as a
    /// rule the server's restart (or a `CLIENT KILL`), which took the shared one too.
    pub(crate) fn check<T>(
        &self,
        outcome: RedisResult<T>,
        what: &str,
    ) -> Result<T, TransportError> {
        outcome.map_err(|error| self.failed(&error, what))
    }

    /// `error` as a `TransportError`, forgetting the shared connection if it is lost.
    pub(crate) fn failed(&self, error: &RedisError, what: &str) -> TransportError {
        if errors::is_lost(error) {
            self.slot().take();
        }
        errors::command(what, error)
    }

    fn cached(&self) -> Option<MultiplexedConnection> {
        self.slot().clone()
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<MultiplexedConnection>> {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    async fn open(
        &self,
        response_timeout: Option<Duration>,
    ) -> Result<MultiplexedConnection, TransportError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(response_timeout);
        let connecting = async {
            let mut connection = self
                .client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("CLIENT")
                .arg("SETNAME")
                .arg(&self.name)
                .query_async::<()>(&mut connection)
                .await?;
            Ok::<_, RedisError>(connection)
        };
        tokio::time::timeout(self.connect_timeout, connecting)
            .await
            .map_err(|_| TransportError::unanswered(&self.address, self.connect_timeout))?
            .map_err(|error| errors::connect(&self.address, &self.url, &error))
    }
}
