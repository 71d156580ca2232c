//! The transport contract, checked through the ports alone: each check is one or more MUST
//! sentences of `fibrpc-ports`, named in its documentation. A broker that cannot give a
//! guarantee says so through [`TransportFactory::lacks`], and the check (or the part of it
//! that needs the guarantee) is skipped with the reason printed.
//!
//! Every wait is bounded: [`LIMIT`] for what must happen, [`QUIET`] for how long to watch for
//! what must not, and past the factory's `redelivery_timeout` for a request that must not come
//! back (a broker redelivers what was left unsettled only when that time is up).

mod cancelled;
mod delivery;
mod failures;
mod held;
mod routing;

use std::future::Future;
use std::time::Duration;

use fibrpc_ports::{Envelope, IncomingRequest, ReplyInbox, RequestStream, TransportError};

pub use self::cancelled::*;
pub use self::delivery::*;
pub use self::failures::*;
pub use self::held::*;
pub use self::routing::*;
use crate::{unique_queue, Connection, Guarantee, TransportFactory};

/// Expands to one test per contract check, over the factory `$factory` evaluates to
/// (`Option<impl TransportFactory>`; `None` skips).
#[macro_export]
macro_rules! contract_tests {
    ($factory:expr) => {
        $crate::contract_tests!(@each $factory;
            replies_reach_their_own_inbox,
            inbox_receives_as_soon_as_opened,
            fields_are_carried_through,
            large_bodies_arrive_byte_exact,
            consumers_share_a_queue,
            unsettled_requests_are_delivered_again,
            dropped_requests_are_delivered_again,
            prefetch_limits_unsettled_requests,
            rejection_requeues_or_discards,
            cancel_hands_back_what_it_holds,
            dropped_stream_hands_back_what_it_holds,
            expired_requests_are_not_handed_out,
            missing_queues_are_reported,
            lost_connections_are_reported,
            malformed_messages_are_settled_and_skipped,
            cancelled_waits_lose_nothing,
            held_requests_stay_with_their_consumer,
        );
        // Runs this test binary again, with this one test selected, as the process it kills.
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn requests_of_a_killed_process_are_delivered_again() {
            let Some(factory) = $factory else { return };
            let test = $crate::contract::TestPath {
                module: module_path!(),
                name: "requests_of_a_killed_process_are_delivered_again",
            };
            $crate::contract::requests_of_a_killed_process_are_delivered_again(&factory, test)
                .await;
        }
    };
    (@each $factory:expr; $($check:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                let Some(factory) = $factory else { return };
                $crate::contract::$check(&factory).await;
            }
        )*
    };
}

/// How long anything that must happen may take.
pub const LIMIT: Duration = Duration::from_secs(10);
/// How long to watch for something that must not happen.
pub const QUIET: Duration = Duration::from_millis(300);
/// What a killed process's end and a busy machine may add to a factory's declared
/// `redelivery_timeout`.
pub const SLACK: Duration = Duration::from_secs(3);

/// True (and the reason printed) when the factory's broker lacks `guarantee`.
fn skipped(factory: &dyn TransportFactory, check: &str, guarantee: Guarantee) -> bool {
    match factory.lacks(guarantee) {
        Some(reason) => {
            eprintln!("skipping {check}: {reason}");
            true
        }
        None => false,
    }
}

/// `future`'s output, or a panic naming `what` if it takes longer than [`LIMIT`].
async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    fibrpc_test_support::within(LIMIT, what, future).await
}

async fn connect(factory: &dyn TransportFactory) -> Connection {
    within("connecting", factory.connect())
        .await
        .expect("cannot connect to the broker under test")
}

async fn queue(factory: &dyn TransportFactory, purpose: &str) -> String {
    let name = unique_queue(purpose);
    within(
        "declaring a queue",
        factory.admin().declare_request_queue(&name),
    )
    .await
    .expect("cannot declare the queue");
    name
}

async fn consume(connection: &Connection, queue: &str, prefetch: u16) -> Box<dyn RequestStream> {
    within(
        "starting a consumer",
        connection.replies.consume_requests(queue, prefetch),
    )
    .await
    .expect("cannot consume the queue")
}

/// Sends `requests` to `queue` and starts a consumer on `consumer`: in that order where the
/// broker keeps requests for a consumer yet to come, else (lacking
/// [`Guarantee::QueuedRequests`]) the consumer first.
async fn send_then_consume(
    factory: &dyn TransportFactory,
    (sender, consumer): (&Connection, &Connection),
    queue: &str,
    prefetch: u16,
    requests: impl IntoIterator<Item = Envelope>,
) -> Box<dyn RequestStream> {
    let early = match factory.lacks(Guarantee::QueuedRequests) {
        Some(_) => Some(consume(consumer, queue, prefetch).await),
        None => None,
    };
    for request in requests {
        send(sender, queue, request).await;
    }
    match early {
        Some(stream) => stream,
        None => consume(consumer, queue, prefetch).await,
    }
}

async fn send(connection: &Connection, queue: &str, request: Envelope) {
    within(
        "sending a request",
        connection.requests.send_request(queue, request),
    )
    .await
    .expect("cannot send the request");
}

/// Answers `request` through its own handle, as the protocol does (`Settle::reply`), then
/// acknowledges it.
async fn answer(mut request: IncomingRequest, reply_to: &str, reply: Envelope) {
    within("sending a reply", request.reply(reply_to, reply))
        .await
        .expect("cannot send the reply");
    settle(request.ack()).await;
}

/// Sends replies to any address the only way a server can: through a request of its own (a
/// carrier, on a scratch queue), so that the checks of replies cover the path production
/// uses.
struct Replier {
    connection: Connection,
    queue: String,
    carriers: Box<dyn RequestStream>,
}

impl Replier {
    async fn open(factory: &dyn TransportFactory, connection: &Connection) -> Self {
        let queue = queue(factory, "carrier").await;
        let carriers = consume(connection, &queue, 1).await;
        Self {
            connection: connection.clone(),
            queue,
            carriers,
        }
    }

    /// The outcome of replying `reply` to `reply_to` through a fresh carrier request.
    async fn try_reply(&mut self, reply_to: &str, reply: Envelope) -> Result<(), TransportError> {
        send(&self.connection, &self.queue, request("carrier")).await;
        let mut carrier = next(&mut self.carriers).await;
        let outcome = within("sending a reply", carrier.reply(reply_to, reply)).await;
        settle(carrier.ack()).await;
        outcome
    }

    async fn reply(&mut self, reply_to: &str, reply: Envelope) {
        self.try_reply(reply_to, reply)
            .await
            .expect("cannot send the reply");
    }

    async fn close(self, factory: &dyn TransportFactory) {
        drop(self.carriers);
        crate::delete_queue(factory, &self.queue).await;
    }
}

async fn open_inbox(connection: &Connection) -> Box<dyn ReplyInbox> {
    within(
        "opening a reply inbox",
        connection.requests.open_reply_inbox(),
    )
    .await
    .expect("cannot open a reply inbox")
}

async fn next(stream: &mut Box<dyn RequestStream>) -> IncomingRequest {
    within("the next request", stream.next_request())
        .await
        .expect("the stream failed")
}

async fn next_reply(inbox: &mut Box<dyn ReplyInbox>) -> Envelope {
    within("the next reply", inbox.next_reply())
        .await
        .expect("the inbox failed")
}

async fn settle(outcome: impl Future<Output = Result<(), TransportError>>) {
    within("settling a request", outcome)
        .await
        .expect("cannot settle the request");
}

/// Asserts that no request is handed out for [`QUIET`]: for what the adapter would hand out
/// at once (past a prefetch, an expired request).
async fn nothing_more(stream: &mut Box<dyn RequestStream>, why: &str) {
    if let Ok(outcome) = tokio::time::timeout(QUIET, stream.next_request()).await {
        panic!("{why}: got {outcome:?}");
    }
}

/// How long to watch for a request that must not come back: [`QUIET`] past the factory's
/// `redelivery_timeout`, when a request left unsettled would be delivered again.
fn watch(factory: &dyn TransportFactory) -> Duration {
    factory.redelivery_timeout() + QUIET
}

/// Asserts that no request comes back for [`watch`]'s time: nothing settled is delivered
/// again, nor anything left unsettled.
async fn nothing_comes_back(
    factory: &dyn TransportFactory,
    stream: &mut Box<dyn RequestStream>,
    why: &str,
) {
    let watch = watch(factory);
    if let Ok(outcome) = tokio::time::timeout(watch, stream.next_request()).await {
        panic!("{why} (watched {watch:?}): got {outcome:?}");
    }
}

fn request(body: &str) -> Envelope {
    Envelope {
        correlation_id: Some(format!("id-{body}")),
        content_type: Some("text/plain".to_owned()),
        body: body.as_bytes().to_vec(),
        ..Envelope::default()
    }
}
