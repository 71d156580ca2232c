//! The client side: requests published through JetStream, replies on a core NATS inbox.

use async_nats::jetstream::context::PublishErrorKind;
use async_trait::async_trait;
use fibrpc_ports::{Envelope, ReplyInbox, RequestTransport, TransportError};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::headers::{to_envelope, to_headers};
use crate::{names, NatsTransport};

#[async_trait]
impl RequestTransport for NatsTransport {
    async fn open_reply_inbox(&self) -> Result<Box<dyn ReplyInbox>, TransportError> {
        let address = self.client.new_inbox();
        let mut disconnections = self.disconnections.clone();
        disconnections.mark_unchanged();
        let subscriber = self
            .client
            .subscribe(address.clone())
            .await
            .map_err(|error| TransportError::disconnected(error.to_string()))?;
        // The subscription is known to the server once a flush returns: no reply is lost.
        self.client
            .flush()
            .await
            .map_err(|error| TransportError::disconnected(error.to_string()))?;
        Ok(Box::new(NatsReplyInbox {
            address,
            subscriber,
            disconnections,
        }))
    }

    async fn send_request(&self, queue: &str, request: Envelope) -> Result<(), TransportError> {
        let headers = to_headers(&request);
        let no_such_queue = || TransportError::NoSuchQueue {
            queue: queue.to_owned(),
        };
        let translate = |error: async_nats::jetstream::context::PublishError| match error.kind() {
            PublishErrorKind::StreamNotFound => no_such_queue(),
            PublishErrorKind::TimedOut => TransportError::Timeout {
                operation: format!("publishing to {queue:?}"),
            },
            PublishErrorKind::BrokenPipe => TransportError::disconnected(error.to_string()),
            _ => TransportError::Refused {
                reason: error.to_string(),
            },
        };
        let acknowledged = self
            .jetstream
            .publish_with_headers(names::subject(queue), headers, request.body.into())
            .await
            .map_err(translate)?;
        acknowledged.await.map(|_| ()).map_err(translate)
    }
}

struct NatsReplyInbox {
    address: String,
    subscriber: async_nats::Subscriber,
    disconnections: watch::Receiver<u64>,
}

#[async_trait]
impl ReplyInbox for NatsReplyInbox {
    fn address(&self) -> &str {
        &self.address
    }

    async fn next_reply(&mut self) -> Result<Envelope, TransportError> {
        if self.disconnections.has_changed().unwrap_or(true) {
            return Err(TransportError::disconnected(
                "NATS connection lost; replies may be lost",
            ));
        }
        tokio::select! {
            message = self.subscriber.next() => match message {
                Some(message) => Ok(to_envelope(message.headers.as_ref(), message.payload.to_vec())),
                None => Err(TransportError::disconnected("the reply subscription ended")),
            },
            _ = self.disconnections.changed() => {
                Err(TransportError::disconnected("NATS connection lost; replies may be lost"))
            }
        }
    }
}
