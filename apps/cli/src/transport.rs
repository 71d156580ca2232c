//! Builds the transport the flags name. The only place the command line knows adapters.

use std::sync::Arc;

use fibrpc_ports::{ReplyTransport, RequestTransport};

use crate::args::{BrokerArgs, ReplyToMode};

/// A connected transport, usable as both ports.
pub struct Transport {
    pub requests: Arc<dyn RequestTransport>,
    pub replies: Arc<dyn ReplyTransport>,
}

pub async fn connect(broker: &BrokerArgs, reply_to: ReplyToMode) -> Result<Transport, String> {
    let _ = (broker, reply_to);
    Err("the AMQP transport is not built yet".to_owned())
}
