//! Making sure a request queue exists: use the one there is, declare only a missing one.
//!
//! Whoever declared a queue first chose its kind and arguments (a tutorial server declares a
//! durable quorum `rpc_queue`, an operator adds a dead-letter exchange or a policy); declaring
//! it again with other ones is refused by RabbitMQ with PRECONDITION_FAILED. So a server
//! declares the queue as its spec says, which creates a missing one and is a no-op on one
//! declared so before; when the broker refuses, the queue exists with other arguments, and a
//! passive declare confirms it and it is consumed as it is. Declaring first keeps a normal
//! start quiet: the broker answers a failed declare by closing the channel it came on (each
//! step runs on a channel of its own), and lapin logs every such close at ERROR, so a passive
//! look for a queue that is not there yet would log an error on every first start.

use fibrpc_ports::TransportError;
use lapin::options::{ExchangeDeclareOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

use crate::connection::Live;
use crate::errors::translate;
use crate::{QueueKind, RequestQueueSpec};

/// What [`ensure_request_queue`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ensured {
    /// The queue was there with other arguments than the spec's; it is used as it is.
    Existing,
    /// The queue is as the spec says: declared now, or before.
    Declared,
}

/// Makes sure `queue` exists. An existing queue is left as it is, whatever its kind and
/// arguments; a missing one is declared as `spec` says. If another program declares it
/// between the look and the declare, with other arguments, theirs stands and is used.
pub(crate) async fn ensure_request_queue(
    live: &Live,
    queue: &str,
    spec: &RequestQueueSpec,
) -> Result<Ensured, TransportError> {
    if let Err(error) = spec.validate() {
        // Nothing to declare with: the queue must be there already.
        return match exists(live, queue).await? {
            true => Ok(Ensured::Existing),
            false => Err(TransportError::Refused {
                reason: format!("request queue {queue:?} not declared: {error}"),
            }),
        };
    }
    match declare(live, queue, spec).await {
        Ok(()) => {
            tracing::debug!(%queue, kind = ?spec.kind, durable = spec.is_durable(), "request queue declared");
            if let Some(exchange) = &spec.dead_letter_exchange {
                warn_if_missing_exchange(live, exchange).await;
            }
            Ok(Ensured::Declared)
        }
        // There with other arguments (or exclusive to another connection, or a reserved
        // name): a queue that exists is used as it is.
        Err(refused @ TransportError::Refused { .. }) => match exists(live, queue).await {
            Ok(true) => Ok(Ensured::Existing),
            _ => Err(refused),
        },
        Err(error) => Err(error),
    }
}

/// A passive declare: true if `queue` exists, false if the broker says it does not.
async fn exists(live: &Live, queue: &str) -> Result<bool, TransportError> {
    match consumers(live, queue).await {
        Ok(_) => Ok(true),
        Err(TransportError::NoSuchQueue { .. }) => Ok(false),
        Err(other) => Err(other),
    }
}

/// A passive declare: how many consumers `queue` has.
pub(crate) async fn consumers(live: &Live, queue: &str) -> Result<u32, TransportError> {
    let options = QueueDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let channel = live.open_channel().await?;
    let outcome = channel
        .queue_declare(queue.into(), options, FieldTable::default())
        .await;
    match outcome {
        Ok(declared) => {
            close(channel).await;
            Ok(declared.consumer_count())
        }
        // The broker closed the channel with its answer: nothing to close.
        Err(error) => Err(translate(&error, queue)),
    }
}

async fn declare(live: &Live, queue: &str, spec: &RequestQueueSpec) -> Result<(), TransportError> {
    // Not exclusive, not auto-deleted, as the tutorial: servers come and go, the queue stays.
    let options = QueueDeclareOptions {
        durable: spec.is_durable(),
        ..Default::default()
    };
    let channel = live.open_channel().await?;
    let outcome = channel
        .queue_declare(queue.into(), options, arguments(spec))
        .await;
    match outcome {
        Ok(_) => {
            close(channel).await;
            Ok(())
        }
        Err(error) => Err(translate(&error, queue)),
    }
}

/// The queue arguments of `spec`. A classic queue gets no `x-queue-type`, as the tutorial
/// declares it, so that its declare and ours agree.
fn arguments(spec: &RequestQueueSpec) -> FieldTable {
    let mut arguments = FieldTable::default();
    if spec.kind == QueueKind::Quorum {
        arguments.insert(
            "x-queue-type".into(),
            AMQPValue::LongString("quorum".into()),
        );
    }
    if let Some(exchange) = &spec.dead_letter_exchange {
        arguments.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(exchange.as_str().into()),
        );
    }
    if let Some(limit) = spec.delivery_limit {
        arguments.insert(
            "x-delivery-limit".into(),
            AMQPValue::LongLongInt(i64::from(limit)),
        );
    }
    arguments
}

/// RabbitMQ accepts a dead-letter exchange that does not exist, and then drops what it
/// dead-letters: worth a warning, not a refusal (it may be declared later).
async fn warn_if_missing_exchange(live: &Live, exchange: &str) {
    let options = ExchangeDeclareOptions {
        passive: true,
        ..Default::default()
    };
    let Ok(channel) = live.open_channel().await else {
        return;
    };
    let outcome = channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Direct,
            options,
            FieldTable::default(),
        )
        .await;
    match outcome {
        Ok(()) => close(channel).await,
        Err(error) => {
            if let TransportError::NoSuchQueue { .. } = translate(&error, exchange) {
                tracing::warn!(
                    %exchange,
                    "the dead-letter exchange does not exist: requests dead-lettered before it is declared are dropped"
                );
            }
        }
    }
}

async fn close(channel: Channel) {
    let _ = channel.close(200, "done".into()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_classic_queue_has_the_tutorials_arguments() {
        assert_eq!(
            arguments(&RequestQueueSpec::default()),
            FieldTable::default()
        );
    }

    #[test]
    fn a_quorum_queue_carries_its_kind_limit_and_dead_letter_exchange() {
        let spec = RequestQueueSpec {
            kind: QueueKind::Quorum,
            durable: false,
            dead_letter_exchange: Some("dead".into()),
            delivery_limit: Some(3),
        };
        let arguments = arguments(&spec);
        let inner = arguments.inner();
        assert_eq!(
            inner.get("x-queue-type"),
            Some(&AMQPValue::LongString("quorum".into()))
        );
        assert_eq!(
            inner.get("x-dead-letter-exchange"),
            Some(&AMQPValue::LongString("dead".into()))
        );
        assert_eq!(
            inner.get("x-delivery-limit"),
            Some(&AMQPValue::LongLongInt(3))
        );
    }
}
