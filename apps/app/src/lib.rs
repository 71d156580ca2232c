//! What a fibrpc program needs around the protocol, for every adapter at once:
//!
//! - [`connect`]: a URL (`amqp://`, `amqps://`, `nats://`, `redis://`, `memory://`) to a
//!   [`Connection`] usable by a client and a server, so that the transport is data;
//! - [`serve`]: a server binary's whole `main` from a [`Service`](fibrpc_rpc::Service), with
//!   the flags, variables and behaviour of `fibrpc serve` ([`ServeArgs`]);
//! - the flags that say where the broker is ([`BrokerArgs`]), shared by `fibrpc` and the bench.
//!
//! This is the one library that knows every adapter; the ports and the protocol know none.

mod connect;
mod flags;
mod logging;
pub mod observe;
mod reply_to;
mod serve;
pub mod shutdown;
mod transports;

pub use connect::{connect, connect_with, memory_broker, ConnectError, ConnectOptions};
pub use fibrpc_amqp::{QueueKind, RequestGuarantees, RequestQueueSpec};
pub use fibrpc_otel::Exporting;
pub use fibrpc_ports::{Connection, QueueAdmin};
pub use flags::{
    check_queue_flags, parse_duration, retry_policy, BrokerArgs, BrokerUrls, GuaranteeArgs,
    QueueType, RequestQueueArgs, TransportChoice,
};
pub use logging::{init_logging, OtlpArgs};
pub use reply_to::ReplyToMode;
pub use serve::{serve, serve_with, ServeArgs};
pub use transports::{transport_named, transport_of, Transport, UrlFlag, TRANSPORTS};
