//! Core mode's server side: queue-group subscriptions to the queue's subject and to one
//! subject per procedure, and the NATS services API beside them.
//!
//! Nothing is stored by the broker: a request is pushed to one subscriber of the queue group
//! at once, and lost with it. So settling is bookkeeping only: `ack` and `reject` tell the
//! broker nothing (there is nothing to acknowledge, nothing to deliver again), and a request
//! dropped unsettled is gone; they count the request in the services API's stats.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::Message;
use async_trait::async_trait;
use fibrpc_ports::{Envelope, IncomingRequest, RequestStream, Settle, TransportError};
use futures_util::stream::{BoxStream, SelectAll};
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};

use crate::headers::{self, to_envelope};
use crate::service::{Counter, Responder, Service};
use crate::{errors, names, unless_disconnected, NatsTransport};

/// Requests read ahead of the server; past it, async-nats's own buffer fills, and then the
/// NATS server drops what it pushes (a slow consumer).
const ARRIVALS: usize = 4096;
/// How long `consume` waits for the server to confirm its subscriptions.
const CONFIRM_LIMIT: Duration = Duration::from_secs(5);

/// Requests from every subject of the queue, each with the procedure its subject names.
type Sources = SelectAll<BoxStream<'static, (Option<Arc<str>>, Message)>>;

pub(crate) async fn consume(
    transport: &NatsTransport,
    queue: &str,
) -> Result<Box<dyn RequestStream>, TransportError> {
    let client = &transport.client;
    let mut disconnections = transport.disconnections.clone();
    disconnections.mark_unchanged();
    let procedures = transport.announced(queue);
    let id = client
        .new_inbox()
        .rsplit('.')
        .next()
        .unwrap_or_default()
        .to_owned();
    let service = Arc::new(Service::new(queue, id, &procedures));

    let mut sources = Sources::default();
    sources.push(subscribe(client, queue, None).await?);
    for (subject, procedure) in service.procedure_subjects() {
        if !names::valid_subject(subject) {
            tracing::warn!(%subject, "procedure has no subject of its own: not a valid subject");
            continue;
        }
        sources.push(subscribe(client, subject, Some(procedure.into())).await?);
    }
    // Only a server that announced its procedures is a service (the kit's bare consumers
    // are not).
    let responder = match procedures.is_empty() {
        true => None,
        false => Some(Responder::start(client, service.clone()).await?),
    };
    confirm(client).await?;
    let (arrived, arrivals) = mpsc::channel(ARRIVALS);
    let reading = tokio::spawn(read(sources, arrived, disconnections.clone())).abort_handle();
    Ok(Box::new(CoreRequestStream {
        client: client.clone(),
        arrivals: Some(arrivals),
        reading,
        disconnections,
        cancelled: false,
        service,
        _responder: responder,
    }))
}

async fn subscribe(
    client: &async_nats::Client,
    subject: &str,
    procedure: Option<Arc<str>>,
) -> Result<BoxStream<'static, (Option<Arc<str>>, Message)>, TransportError> {
    let subscriber = client
        .queue_subscribe(subject.to_owned(), names::QUEUE_GROUP.to_owned())
        .await
        .map_err(|error| errors::subscribe(&error))?;
    Ok(subscriber
        .map(move |message| (procedure.clone(), message))
        .boxed())
}

/// Returns once the server has handled this connection's subscriptions: a request sent from
/// another connection right after `consume_requests` returns must find them. The server
/// handles a connection's operations in order, so a message to ourselves, back, proves it.
async fn confirm(client: &async_nats::Client) -> Result<(), TransportError> {
    let subject = client.new_inbox();
    let mut echo = client
        .subscribe(subject.clone())
        .await
        .map_err(|error| errors::subscribe(&error))?;
    client
        .publish(subject.clone(), Default::default())
        .await
        .map_err(|error| errors::core_publish(&subject, &error))?;
    match tokio::time::timeout(CONFIRM_LIMIT, echo.next()).await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(errors::subscription_ended()),
        Err(_) => Err(errors::probe_timeout(CONFIRM_LIMIT)),
    }
}

/// Reads requests as they arrive, so that the time one then waits to be handed out counts
/// against its deadline (core NATS stamps nothing), and its headers are read off the server's
/// loop. Ends, and with it the stream, when the subscriptions or the connection end.
async fn read(
    mut sources: Sources,
    arrived: mpsc::Sender<Envelope>,
    mut disconnections: watch::Receiver<u64>,
) {
    loop {
        let next = tokio::select! {
            next = sources.next() => next,
            // Unsubscribed at once (async-nats would subscribe again after reconnecting, and
            // requests would go on coming to a stream that has ended).
            _ = disconnections.changed() => None,
        };
        let Some((procedure, message)) = next else {
            return;
        };
        if let Some(envelope) = envelope(procedure, message) {
            if arrived.send(envelope).await.is_err() {
                return;
            }
        }
    }
}

/// The request in `message`, or None (logged) when it is unreadable.
fn envelope(procedure: Option<Arc<str>>, message: Message) -> Option<Envelope> {
    if let Some(reason) = headers::unreadable(message.headers.as_ref()) {
        // Nothing to settle: dropping it is all the ports' rule asks here.
        tracing::warn!(%reason, "malformed request dropped");
        return None;
    }
    // Pushed to us as it was published: it waited nowhere before now.
    let mut envelope = to_envelope(
        message.headers.as_ref(),
        message.payload.to_vec(),
        Duration::ZERO,
    );
    if envelope.reply_to.is_none() {
        // A plain NATS request: answer on its reply subject, unless it is a fibrpc client's
        // status subject (a request sent without a reply address).
        envelope.reply_to = message
            .reply
            .filter(|reply| !reply.starts_with(names::STATUS_PREFIX))
            .map(|reply| reply.to_string());
    }
    if envelope.procedure.is_none() {
        envelope.procedure = procedure.map(|procedure| procedure.to_string());
    }
    Some(envelope)
}

struct CoreRequestStream {
    /// Where replies are published.
    client: async_nats::Client,
    /// None once the stream has ended (error, disconnection or cancel).
    arrivals: Option<mpsc::Receiver<Envelope>>,
    /// The reader; aborted with the stream, which unsubscribes.
    reading: tokio::task::AbortHandle,
    disconnections: watch::Receiver<u64>,
    cancelled: bool,
    service: Arc<Service>,
    _responder: Option<Responder>,
}

impl CoreRequestStream {
    fn end(&mut self, error: TransportError) -> TransportError {
        self.reading.abort();
        self.arrivals = None;
        error
    }
}

impl Drop for CoreRequestStream {
    fn drop(&mut self) {
        self.reading.abort();
    }
}

#[async_trait]
impl RequestStream for CoreRequestStream {
    async fn next_request(&mut self) -> Result<IncomingRequest, TransportError> {
        if self.cancelled {
            return Err(TransportError::Cancelled);
        }
        loop {
            let arrivals = self.arrivals.as_mut().ok_or_else(errors::connection_lost)?;
            // Cancel-safe: a request leaves the channel only when this returns it.
            let arrived = async { arrivals.recv().await.ok_or_else(errors::subscription_ended) };
            let envelope = match unless_disconnected(&mut self.disconnections, arrived).await {
                Ok(envelope) => envelope,
                Err(error) => return Err(self.end(error)),
            };
            if envelope.is_expired_at(Instant::now()) {
                tracing::debug!("request past its deadline: dropped before handing it out");
                continue;
            }
            let counter = self.service.endpoint(envelope.procedure.as_deref());
            return Ok(IncomingRequest::new(
                envelope,
                false,
                Box::new(CoreSettle {
                    counter,
                    client: self.client.clone(),
                    error: None,
                }),
            ));
        }
    }

    async fn cancel(&mut self) -> Result<(), TransportError> {
        // Unsubscribes; what was pushed to us and not yet handed out is lost (core NATS keeps
        // nothing to give back).
        self.cancelled = true;
        self.end(TransportError::Cancelled);
        Ok(())
    }
}

/// Settling a core request: nothing to tell the broker; the services API counts it.
struct CoreSettle {
    counter: Counter,
    /// Where the reply is published.
    client: async_nats::Client,
    /// The error the reply carried, for the services API's stats (`code:message`).
    error: Option<String>,
}

#[async_trait]
impl Settle for CoreSettle {
    async fn reply(&mut self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        self.error = reply
            .error
            .as_ref()
            .map(|error| format!("{}:{}", headers::service_error_code(error), error.message));
        crate::reply::send_reply(&self.client, reply_to, reply, false).await
    }

    async fn ack(self: Box<Self>) -> Result<(), TransportError> {
        let settled = *self;
        settled.counter.done(settled.error);
        Ok(())
    }

    async fn reject(self: Box<Self>, _requeue: bool) -> Result<(), TransportError> {
        let settled = *self;
        settled.counter.done(settled.error);
        Ok(())
    }
}
