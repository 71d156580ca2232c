//! The whole RPC flow over an adapter: the rules of the protocol, checked end to end.
//!
//! The calls ([`calls`]) run for every [`Workload`]: fib, and the example's text-statistics
//! service. fib's wire (the tutorial's text, bad input, error replies) has scenarios of its
//! own ([`fib`]), and so have servers of several procedures ([`services`]). Each scenario takes
//! a [`TransportFactory`], uses its own queue and cleans it up.

mod batches;
mod calls;
mod fib;
mod services;
mod workload;

use std::time::Duration;

use fibrpc_domain::Fibonacci;
use fibrpc_fib::Fib;
use fibrpc_ports::{Envelope, IncomingRequest, RequestStream};
use fibrpc_rpc::{ClientConfig, RpcClient, ServerConfig};
pub use fibrpc_test_support::RunningServer;

pub use self::batches::*;
pub use self::calls::*;
pub use self::fib::*;
pub use self::services::*;
pub use self::workload::{FibWorkload, TextWorkload, Workload};
use crate::{unique_queue, Connection, Guarantee, TransportFactory};

/// Expands to one test per protocol scenario, over the factory `$factory` evaluates to
/// (`Option<impl TransportFactory>`; `None` skips): the calls with fib, fib's wire, the calls
/// again with the example's text-statistics service (in a module `text_service`), and servers
/// of several procedures (in a module `services`).
#[macro_export]
macro_rules! protocol_tests {
    ($factory:expr) => {
        $crate::protocol_tests!(@calls $factory, $crate::protocol::FibWorkload);
        $crate::protocol_tests!(@each $factory;
            remote_errors_are_typed,
            late_reply_is_dropped_and_counted,
            bad_requests_get_error_replies,
            request_without_reply_to_is_acknowledged,
            text_and_bincode_clients_share_a_server,
            shutdown_finishes_in_flight_and_loses_nothing,
        );
        #[allow(unused_imports)]
        mod text_service {
            use super::*;
            $crate::protocol_tests!(@calls $factory, $crate::protocol::TextWorkload);
        }
        #[allow(unused_imports)]
        mod services {
            use super::*;
            $crate::protocol_tests!(@each $factory;
                unknown_procedures_get_an_error_reply_at_once,
                several_services_share_a_queue,
                a_procedure_bounds_its_own_concurrency,
                json_calls_round_trip_and_error_replies_are_marked,
            );
        }
        #[allow(unused_imports)]
        mod batches {
            use super::*;
            $crate::protocol_tests!(@each $factory;
                a_request_batch_is_answered_call_by_call,
                a_malformed_batch_is_set_aside_once,
                only_callers_that_read_them_get_coalesced_replies,
                coalesced_calls_keep_their_own_results,
            );
        }
    };
    (@calls $factory:expr, $workload:expr) => {
        $crate::protocol_tests!(@workload $factory, $workload;
            one_client_one_server,
            many_clients_many_servers,
            call_without_server_times_out_at_its_deadline,
            cancelled_call_leaves_nothing_pending,
            unacknowledged_requests_go_to_another_server,
            lost_connection_fails_calls_promptly_then_recovers,
            many_timed_out_calls_leave_nothing_behind,
        );
    };
    (@workload $factory:expr, $workload:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(factory) = $factory else { return };
                $crate::protocol::$scenario(&factory, &$workload).await;
            }
        )*
    };
    (@each $factory:expr; $($scenario:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $scenario() {
                let Some(factory) = $factory else { return };
                $crate::protocol::$scenario(&factory).await;
            }
        )*
    };
}

const LIMIT: Duration = Duration::from_secs(20);

fn server_config(queue: &str) -> ServerConfig {
    ServerConfig {
        queue: queue.to_owned(),
        ..ServerConfig::default()
    }
}

fn client_config(queue: &str) -> ClientConfig {
    ClientConfig {
        queue: queue.to_owned(),
        ..ClientConfig::default()
    }
}

async fn connect(factory: &dyn TransportFactory) -> Connection {
    factory
        .connect()
        .await
        .expect("cannot connect to the broker under test")
}

async fn client(factory: &dyn TransportFactory, config: ClientConfig) -> RpcClient {
    RpcClient::connect(connect(factory).await.requests, config)
        .await
        .expect("cannot open a reply address")
}

/// A fib server (the default bound) on a connection of its own.
async fn fib_server(factory: &dyn TransportFactory, config: ServerConfig) -> RunningServer {
    let service = Fib::service(Fibonacci::default());
    let server = RunningServer::start(connect(factory).await.replies, config, service);
    server.consuming().await;
    server
}

/// A queue that exists before any server consumes it, deleted when the scenario ends.
async fn queue(factory: &dyn TransportFactory, purpose: &str) -> String {
    let name = unique_queue(purpose);
    factory
        .admin()
        .declare_request_queue(&name)
        .await
        .expect("cannot declare the queue");
    name
}

/// A bare consumer of `queue`, bypassing the server; started before the call it is to take is
/// made, since a broker without queues (lacking `QueuedRequests`) keeps nothing for later.
async fn bare_consumer(
    connection: &Connection,
    queue: &str,
    prefetch: u16,
) -> Box<dyn RequestStream> {
    connection
        .replies
        .consume_requests(queue, prefetch)
        .await
        .expect("cannot consume the queue")
}

/// The next request `stream` hands out.
async fn take_request(stream: &mut Box<dyn RequestStream>) -> IncomingRequest {
    tokio::time::timeout(LIMIT, stream.next_request())
        .await
        .expect("no request arrived")
        .unwrap()
}

/// Where the broker keeps no queue (it lacks `QueuedRequests`), a consumer that takes
/// nothing, so that calls to `queue` go unanswered as they would in a queue no server
/// consumes (rather than fail at once with `NoSuchQueue`). Keep it while that should last.
async fn silent_consumer(
    factory: &dyn TransportFactory,
    queue: &str,
) -> Option<Box<dyn RequestStream>> {
    factory.lacks(Guarantee::QueuedRequests)?;
    Some(bare_consumer(&connect(factory).await, queue, 1).await)
}

/// True, with the reason printed, when the broker lacks `guarantee`.
fn skipped(factory: &dyn TransportFactory, check: &str, guarantee: Guarantee) -> bool {
    let reason = factory.lacks(guarantee);
    if let Some(reason) = reason {
        eprintln!("skipping {check}: {reason}");
    }
    reason.is_some()
}

/// Sends one raw request and waits for its reply on a fresh reply address.
async fn raw_call(connection: &Connection, queue: &str, mut request: Envelope) -> Envelope {
    let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
    request.reply_to = Some(inbox.address().to_owned());
    connection
        .requests
        .send_request(queue, request)
        .await
        .unwrap();
    tokio::time::timeout(LIMIT, inbox.next_reply())
        .await
        .expect("no reply to a raw request")
        .unwrap()
}

fn raw(content_type: Option<&str>, body: &[u8]) -> Envelope {
    Envelope {
        correlation_id: Some(uuid::Uuid::new_v4().to_string()),
        content_type: content_type.map(str::to_owned),
        body: body.to_vec(),
        ..Envelope::default()
    }
}
