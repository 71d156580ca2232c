//! The client side: requests published through JetStream, replies on a core NATS inbox.

use std::time::Duration;

use async_trait::async_trait;
use fibrpc_ports::{Envelope, ReplyInbox, RequestTransport, TransportError};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::headers::{to_envelope, to_headers};
use crate::{core_client, errors, names, NatsMode, NatsTransport};

/// How long `open_reply_inbox` waits for the server to confirm the inbox's subscription.
const PROBE_LIMIT: Duration = Duration::from_secs(5);

#[async_trait]
impl RequestTransport for NatsTransport {
    async fn open_reply_inbox(&self) -> Result<Box<dyn ReplyInbox>, TransportError> {
        let address = self.client.new_inbox();
        // Watched from before the subscription: a loss from here on ends the inbox.
        let mut disconnections = self.disconnections.clone();
        disconnections.mark_unchanged();
        let mut subscriber = self
            .client
            .subscribe(address.clone())
            .await
            .map_err(|error| errors::subscribe(&error))?;
        // A reply sent from another connection right after this returns must not be lost, so
        // the server must have processed the subscription by then. A flush does not prove it
        // (it only writes the SUB to the socket, and async-nats has no PING round trip to
        // offer); a message to the inbox itself, once it comes back, does, since the server
        // handles a connection's operations in order. Nobody else knows the address yet, so
        // the first message is that probe.
        self.client
            .publish(address.clone(), Default::default())
            .await
            .map_err(|error| errors::core_publish(&address, &error))?;
        match tokio::time::timeout(PROBE_LIMIT, subscriber.next()).await {
            Ok(Some(_probe)) => {}
            Ok(None) => return Err(errors::subscription_ended()),
            Err(_) => return Err(errors::probe_timeout(PROBE_LIMIT)),
        }
        Ok(Box::new(NatsReplyInbox {
            address,
            subscriber: Some(subscriber),
            ended: None,
            disconnections,
        }))
    }

    async fn send_request(&self, queue: &str, request: Envelope) -> Result<(), TransportError> {
        if self.mode == NatsMode::Core {
            return core_client::send_request(self, queue, request).await;
        }
        let headers = to_headers(&request)?;
        let mut disconnections = self.disconnections.clone();
        disconnections.mark_unchanged();
        let acknowledged = self
            .jetstream
            .publish_with_headers(names::subject(queue), headers, request.body.into())
            .await
            .map_err(|error| errors::request_publish(queue, &error))?;
        // Ok only once the stream has stored it: the publish acknowledgement. It comes back
        // over core NATS, so a disconnection loses it; report the loss then, rather than the
        // ack timeout seconds later.
        tokio::select! {
            acknowledged = acknowledged => acknowledged
                .map(|_| ())
                .map_err(|error| errors::request_publish(queue, &error)),
            _ = disconnections.changed() => Err(errors::unconfirmed(queue)),
        }
    }
}

struct NatsReplyInbox {
    address: String,
    /// None once the inbox has ended (unsubscribed: async-nats would otherwise subscribe it
    /// again after reconnecting, and replies would come out of an ended inbox).
    subscriber: Option<async_nats::Subscriber>,
    /// What the inbox ended with; every later call returns it again.
    ended: Option<TransportError>,
    disconnections: watch::Receiver<u64>,
}

impl NatsReplyInbox {
    async fn receive(&mut self) -> Result<Envelope, TransportError> {
        let Some(subscriber) = self.subscriber.as_mut() else {
            return Err(self.ended.clone().unwrap_or_else(errors::connection_lost));
        };
        // Checked before waiting, so that a busy inbox cannot hide a loss behind its replies.
        if self.disconnections.has_changed().unwrap_or(true) {
            return Err(errors::connection_lost());
        }
        tokio::select! {
            message = subscriber.next() => match message {
                // A reply is not queued anywhere on its way: nothing to take off its deadline.
                Some(message) => Ok(to_envelope(
                    message.headers.as_ref(),
                    message.payload.to_vec(),
                    Duration::ZERO,
                )),
                None => Err(errors::subscription_ended()),
            },
            _ = self.disconnections.changed() => Err(errors::connection_lost()),
        }
    }
}

#[async_trait]
impl ReplyInbox for NatsReplyInbox {
    fn address(&self) -> &str {
        &self.address
    }

    async fn next_reply(&mut self) -> Result<Envelope, TransportError> {
        let outcome = self.receive().await;
        if let Err(error) = &outcome {
            // An error ends the inbox.
            self.subscriber = None;
            self.ended = Some(error.clone());
        }
        outcome
    }
}
