//! The bare request/reply of each broker (no fibrpc layer), as `fibrpc bare-echo` runs it and
//! `fibrpc bench --baseline` measures it. The code that speaks to the brokers lives in the
//! adapters; this only picks one by the flags.

use fibrpc_amqp::baseline::{BareClient as AmqpClient, BareEcho as AmqpEcho};
use fibrpc_nats::baseline::{BareNatsClient, BareNatsEcho};

use crate::args::{BrokerUrls, TransportKind};

/// Redis has no bare request/reply written yet to compare fibrpc with.
const NO_BARE_REDIS: &str = "there is no bare Redis baseline yet (drop --baseline)";

/// A running bare echo server.
pub enum BareServer {
    Amqp(Box<AmqpEcho>),
    Nats(BareNatsEcho),
}

impl BareServer {
    /// Starts answering on `queue` (the subject, for NATS) with `prefetch` requests
    /// unacknowledged at most (AMQP).
    pub async fn start(
        transport: TransportKind,
        urls: &BrokerUrls,
        queue: &str,
        prefetch: u16,
    ) -> Result<Self, String> {
        match transport {
            TransportKind::Amqp => AmqpEcho::start(&urls.amqp_url, queue, prefetch)
                .await
                .map(|echo| Self::Amqp(Box::new(echo)))
                .map_err(|error| format!("bare AMQP echo: {error}")),
            TransportKind::Nats => BareNatsEcho::start(&urls.nats_url, queue)
                .await
                .map(Self::Nats)
                .map_err(|error| format!("bare NATS echo: {error}")),
            TransportKind::Redis => Err(NO_BARE_REDIS.to_owned()),
        }
    }

    pub fn echoed(&self) -> u64 {
        match self {
            Self::Amqp(echo) => echo.echoed(),
            Self::Nats(echo) => echo.echoed(),
        }
    }

    /// Resolves when the server stops by itself (connection lost).
    pub async fn ended(&mut self) {
        match self {
            Self::Amqp(echo) => echo.ended().await,
            Self::Nats(echo) => echo.ended().await,
        }
    }

    pub async fn stop(self) {
        match self {
            Self::Amqp(echo) => echo.stop().await,
            Self::Nats(echo) => echo.stop(),
        }
    }
}

/// A bare client. Cheap to clone.
#[derive(Clone)]
pub enum BareCaller {
    Amqp(AmqpClient),
    Nats(BareNatsClient),
}

impl BareCaller {
    pub async fn connect(
        transport: TransportKind,
        urls: &BrokerUrls,
        queue: &str,
        max_in_flight: usize,
    ) -> Result<Self, String> {
        match transport {
            TransportKind::Amqp => AmqpClient::connect(&urls.amqp_url, queue, max_in_flight)
                .await
                .map(Self::Amqp),
            TransportKind::Nats => BareNatsClient::connect(&urls.nats_url, queue)
                .await
                .map(Self::Nats),
            TransportKind::Redis => return Err(NO_BARE_REDIS.to_owned()),
        }
        .map_err(|error| format!("bare client: {error}"))
    }

    pub async fn call(&self, body: &[u8]) -> Result<Vec<u8>, fibrpc_ports::TransportError> {
        match self {
            Self::Amqp(client) => client.call(body).await,
            Self::Nats(client) => client.call(body).await,
        }
    }
}
