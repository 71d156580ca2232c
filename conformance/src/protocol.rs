//! The whole RPC flow over an adapter: the rules of the protocol, checked end to end.
//!
//! Each scenario takes a [`TransportFactory`], uses its own queue and cleans it up.

use std::sync::Arc;
use std::time::Duration;

use fibrpc_domain::{fib, DomainError};
use fibrpc_ports::{Envelope, IncomingRequest, TransportError};
use fibrpc_rpc::codec::{Codec, BINCODE_CONTENT_TYPE};
use fibrpc_rpc::{
    CallError, ClientConfig, RpcClient, RpcServer, ServerConfig, ServerHandle, ServerStats,
};
use futures_util::future::join_all;
use tokio::time::Instant;

use crate::{eventually, unique_queue, Connection, TransportFactory};

/// Expands to one test per protocol scenario, over the factory `$factory` evaluates to
/// (`Option<impl TransportFactory>`; `None` skips).
#[macro_export]
macro_rules! protocol_tests {
    ($factory:expr) => {
        $crate::protocol_tests!(@each $factory;
            one_client_one_server,
            many_clients_many_servers,
            remote_errors_are_typed,
            call_without_server_times_out_at_its_deadline,
            late_reply_is_dropped_and_counted,
            cancelled_call_leaves_nothing_pending,
            unacknowledged_requests_go_to_another_server,
            bad_requests_get_error_replies,
            request_without_reply_to_is_acknowledged,
            text_and_bincode_clients_share_a_server,
            shutdown_finishes_in_flight_and_loses_nothing,
            lost_connection_fails_calls_promptly_then_recovers,
            many_timed_out_calls_leave_nothing_behind,
        );
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

/// A server over one of the factory's connections, in a task of its own.
pub struct RunningServer {
    handle: ServerHandle,
    pub stats: Arc<ServerStats>,
}

impl RunningServer {
    pub async fn start(connection: &Connection, config: ServerConfig) -> Self {
        let handle = RpcServer::new(connection.replies.clone(), config).spawn();
        let stats = handle.stats();
        Self { handle, stats }
    }

    /// Kills the server as a crash would: its task is dropped mid-flight, with whatever
    /// requests it held unsettled.
    pub async fn kill(self) {
        self.handle.kill().await;
    }

    /// Asks for a graceful shutdown and waits for it. The stats it returns are final: a
    /// reply can reach its caller before the server has counted it.
    pub async fn stop(self) -> Arc<ServerStats> {
        tokio::time::timeout(LIMIT, self.handle.stop())
            .await
            .expect("server did not stop in time")
            .expect("server failed");
        self.stats
    }
}

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

/// A queue that exists before any server consumes it, deleted when the scenario ends.
async fn queue(factory: &dyn TransportFactory, purpose: &str) -> String {
    let name = unique_queue(purpose);
    factory
        .declare_queue(&name)
        .await
        .expect("cannot declare the queue");
    name
}

pub async fn one_client_one_server(factory: &dyn TransportFactory) {
    let queue = queue(factory, "one-to-one").await;
    let server = RunningServer::start(&connect(factory).await, server_config(&queue)).await;
    let client = client(factory, client_config(&queue)).await;

    assert_eq!(client.call(30).await.unwrap().to_string(), "832040");
    assert_eq!(
        client.call(100).await.unwrap().to_string(),
        "354224848179261915075"
    );
    assert_eq!(client.call(0).await.unwrap().to_string(), "0");
    assert_eq!(client.stats().pending, 0);
    assert_eq!(server.stop().await.answered(), 3);
    factory.delete_queue(&queue).await;
}

/// 8 clients with 64 calls in flight each, over 2 servers: every caller gets its own answer.
pub async fn many_clients_many_servers(factory: &dyn TransportFactory) {
    const CLIENTS: u64 = 8;
    const CALLS: u64 = 64;
    let queue = queue(factory, "many").await;
    let servers = [
        RunningServer::start(&connect(factory).await, server_config(&queue)).await,
        RunningServer::start(&connect(factory).await, server_config(&queue)).await,
    ];
    let mut callers = Vec::new();
    for c in 0..CLIENTS {
        let client = client(factory, client_config(&queue)).await;
        callers.push(tokio::spawn(async move {
            let calls = (0..CALLS).map(|i| {
                let client = client.clone();
                // Distinct n per call, so a reply routed to the wrong caller shows.
                let n = 1000 + c * CALLS + i;
                async move { (n, client.call(n).await) }
            });
            let outcomes = join_all(calls).await;
            (client.stats(), outcomes)
        }));
    }
    for caller in callers {
        let (stats, outcomes) = caller.await.unwrap();
        assert_eq!(outcomes.len() as u64, CALLS);
        for (n, outcome) in outcomes {
            assert_eq!(outcome.unwrap(), fib(n), "fib({n})");
        }
        assert_eq!(stats.pending, 0);
        assert_eq!(stats.unmatched_replies, 0);
    }
    let mut answered = 0;
    for server in servers {
        answered += server.stop().await.answered();
    }
    assert_eq!(answered, CLIENTS * CALLS);
    factory.delete_queue(&queue).await;
}

pub async fn remote_errors_are_typed(factory: &dyn TransportFactory) {
    let queue = queue(factory, "remote-error").await;
    let config = ServerConfig {
        max_n: 1000,
        ..server_config(&queue)
    };
    let server = RunningServer::start(&connect(factory).await, config).await;
    for codec in [Codec::Bincode, Codec::Text] {
        let client = client(
            factory,
            ClientConfig {
                codec,
                ..client_config(&queue)
            },
        )
        .await;
        assert_eq!(
            client.call(1001).await,
            Err(CallError::Remote(DomainError::AboveBound {
                n: 1001,
                max: 1000
            })),
            "{codec:?}"
        );
        assert_eq!(client.call(1000).await.unwrap(), fib(1000), "{codec:?}");
    }
    assert_eq!(server.stop().await.error_replies(), 2);
    factory.delete_queue(&queue).await;
}

pub async fn call_without_server_times_out_at_its_deadline(factory: &dyn TransportFactory) {
    let queue = queue(factory, "no-server").await;
    let timeout = Duration::from_millis(300);
    let client = client(
        factory,
        ClientConfig {
            timeout,
            ..client_config(&queue)
        },
    )
    .await;
    let started = Instant::now();
    assert_eq!(client.call(30).await, Err(CallError::Timeout(timeout)));
    let elapsed = started.elapsed();
    assert!(elapsed >= timeout, "gave up early, after {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(1),
        "gave up late, after {elapsed:?}"
    );
    assert_eq!(client.stats().pending, 0);
    factory.delete_queue(&queue).await;
}

/// Takes one request off `queue` with a bare consumer, bypassing the server.
async fn take_request(
    connection: &Connection,
    queue: &str,
    prefetch: u16,
) -> (Box<dyn fibrpc_ports::RequestStream>, IncomingRequest) {
    let mut stream = connection
        .replies
        .consume_requests(queue, prefetch)
        .await
        .unwrap();
    let request = tokio::time::timeout(LIMIT, stream.next_request())
        .await
        .expect("no request arrived")
        .unwrap();
    (stream, request)
}

pub async fn late_reply_is_dropped_and_counted(factory: &dyn TransportFactory) {
    let queue = queue(factory, "late").await;
    let timeout = Duration::from_millis(200);
    let client = client(
        factory,
        ClientConfig {
            timeout,
            ..client_config(&queue)
        },
    )
    .await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call(30).await }
    });
    let slow = connect(factory).await;
    let (_stream, request) = take_request(&slow, &queue, 1).await;
    assert_eq!(call.await.unwrap(), Err(CallError::Timeout(timeout)));
    assert_eq!(client.stats().pending, 0);

    let late = Envelope {
        correlation_id: request.envelope.correlation_id.clone(),
        content_type: Some(BINCODE_CONTENT_TYPE.to_owned()),
        body: Codec::Bincode.encode_reply(&Ok(fibrpc_domain::FibResponse::new(fib(30)))),
        ..Envelope::default()
    };
    let reply_to = request.envelope.reply_to.clone().unwrap();
    slow.replies.send_reply(&reply_to, late).await.unwrap();
    request.ack().await.unwrap();
    eventually(LIMIT, "the late reply is counted", || async {
        client.stats().unmatched_replies == 1
    })
    .await;
    assert_eq!(client.stats().pending, 0);
    factory.delete_queue(&queue).await;
}

pub async fn cancelled_call_leaves_nothing_pending(factory: &dyn TransportFactory) {
    let queue = queue(factory, "cancel").await;
    let client = client(factory, client_config(&queue)).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call(30).await }
    });
    let taker = connect(factory).await;
    let (_stream, request) = take_request(&taker, &queue, 1).await;
    assert_eq!(client.stats().pending, 1, "the call is in flight");
    call.abort();
    assert!(call.await.unwrap_err().is_cancelled());
    assert_eq!(client.stats().pending, 0);
    request.ack().await.unwrap();
    factory.delete_queue(&queue).await;
}

/// A consumer that goes away holding requests it never settled: they reach another server.
pub async fn unacknowledged_requests_go_to_another_server(factory: &dyn TransportFactory) {
    const CALLS: u64 = 10;
    let queue = queue(factory, "redeliver").await;
    let client = client(factory, client_config(&queue)).await;
    let calls: Vec<_> = (0..CALLS)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { (n, client.call(n).await) })
        })
        .collect();

    let doomed = connect(factory).await;
    let mut stream = doomed
        .replies
        .consume_requests(&queue, CALLS as u16)
        .await
        .unwrap();
    let mut held = Vec::new();
    for _ in 0..CALLS {
        let request = tokio::time::timeout(LIMIT, stream.next_request())
            .await
            .unwrap()
            .unwrap();
        assert!(!request.redelivered);
        held.push(request);
    }
    // The doomed server dies: its stream and its unsettled requests are dropped.
    drop(held);
    drop(stream);
    drop(doomed);

    let survivor = RunningServer::start(&connect(factory).await, server_config(&queue)).await;
    for call in calls {
        let (n, outcome) = call.await.unwrap();
        assert_eq!(outcome.unwrap(), fib(n));
    }
    assert_eq!(survivor.stop().await.answered(), CALLS);
    factory.delete_queue(&queue).await;
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

pub async fn bad_requests_get_error_replies(factory: &dyn TransportFactory) {
    let queue = queue(factory, "bad-input").await;
    let config = ServerConfig {
        max_body_bytes: 1024,
        ..server_config(&queue)
    };
    let server = RunningServer::start(&connect(factory).await, config).await;
    let connection = connect(factory).await;
    let text = Some("text/plain");
    let bincode = Some(BINCODE_CONTENT_TYPE);
    let valid_bincode = Codec::Bincode.encode_request(fibrpc_domain::FibRequest { n: 1 << 40 });
    let cases: Vec<(&str, Envelope, &str)> = vec![
        ("empty body", raw(text, b""), "invalid-request"),
        ("not a number", raw(None, b"thirty"), "invalid-request"),
        ("negative", raw(text, b"-5"), "invalid-request"),
        (
            "thousands of digits",
            raw(text, "7".repeat(1000).as_bytes()),
            "invalid-request",
        ),
        ("above the bound", raw(text, b"1000001"), "above-bound"),
        ("invalid UTF-8", raw(text, b"\xff\xfe3"), "invalid-request"),
        (
            "truncated bincode",
            raw(bincode, &valid_bincode[..valid_bincode.len() - 1]),
            "invalid-request",
        ),
        (
            "garbage bincode",
            raw(bincode, &[0xff; 16]),
            "invalid-request",
        ),
        (
            "unknown content type",
            raw(Some("application/json"), b"{\"n\": 3}"),
            "unsupported-content-type",
        ),
        (
            "body too large",
            raw(text, &vec![b'1'; 4096]),
            "body-too-large",
        ),
    ];
    let count = cases.len() as u64;
    for (what, request, code) in cases {
        let id = request.correlation_id.clone();
        let reply = raw_call(&connection, &queue, request).await;
        assert_eq!(reply.correlation_id, id, "{what}");
        let codec = Codec::for_content_type(reply.content_type.as_deref()).unwrap();
        let error = codec.decode_reply(&reply.body).unwrap().expect_err(what);
        assert_eq!(error.code(), code, "{what}: {error}");
    }
    // A request without a correlation id is still answered (the tutorial sends one, others
    // may not); the reply simply carries none.
    let anonymous = Envelope {
        correlation_id: None,
        ..raw(text, b"10")
    };
    let reply = raw_call(&connection, &queue, anonymous).await;
    assert_eq!(reply.correlation_id, None);
    assert_eq!(reply.body, b"55");

    // And the server is still serving.
    let client = client(factory, client_config(&queue)).await;
    assert_eq!(client.call(30).await.unwrap(), fib(30));
    assert_eq!(server.stop().await.error_replies(), count);
    factory.delete_queue(&queue).await;
}

pub async fn request_without_reply_to_is_acknowledged(factory: &dyn TransportFactory) {
    let queue = queue(factory, "no-reply-to").await;
    let server = RunningServer::start(&connect(factory).await, server_config(&queue)).await;
    let connection = connect(factory).await;
    connection
        .requests
        .send_request(&queue, raw(Some("text/plain"), b"30"))
        .await
        .unwrap();
    let stats = server.stats.clone();
    eventually(
        LIMIT,
        "the request without reply_to is taken and acknowledged",
        || async {
            stats
                .without_reply_to
                .load(std::sync::atomic::Ordering::Relaxed)
                == 1
        },
    )
    .await;
    // Acknowledged, not requeued: the server stops without it coming back.
    server.stop().await;
    let after = RunningServer::start(&connect(factory).await, server_config(&queue)).await;
    let client = client(factory, client_config(&queue)).await;
    assert_eq!(client.call(1).await.unwrap(), fib(1));
    assert_eq!(
        after
            .stats
            .without_reply_to
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    after.stop().await;
    factory.delete_queue(&queue).await;
}

pub async fn text_and_bincode_clients_share_a_server(factory: &dyn TransportFactory) {
    let queue = queue(factory, "codecs").await;
    let server = RunningServer::start(&connect(factory).await, server_config(&queue)).await;
    let text = client(
        factory,
        ClientConfig {
            codec: Codec::Text,
            ..client_config(&queue)
        },
    )
    .await;
    let binary = client(factory, client_config(&queue)).await;
    let (a, b) = tokio::join!(text.call(500), binary.call(500));
    assert_eq!(a.unwrap(), fib(500));
    assert_eq!(b.unwrap(), fib(500));
    // The tutorial's exact wire format: decimal text both ways, no content type.
    let reply = raw_call(&connect(factory).await, &queue, raw(None, b"30")).await;
    assert_eq!(reply.body, b"832040");
    server.stop().await;
    factory.delete_queue(&queue).await;
}

/// A server asked to stop while computing finishes what it started and gives back what it
/// had not; a second server answers the rest: no call is lost.
pub async fn shutdown_finishes_in_flight_and_loses_nothing(factory: &dyn TransportFactory) {
    const CALLS: u64 = 16;
    let queue = queue(factory, "shutdown").await;
    let config = ServerConfig {
        prefetch: 4,
        concurrency: 2,
        ..server_config(&queue)
    };
    let first = RunningServer::start(&connect(factory).await, config.clone()).await;
    let client = client(
        factory,
        ClientConfig {
            timeout: LIMIT,
            ..client_config(&queue)
        },
    )
    .await;
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let client = client.clone();
            // Big enough to be mid-computation when the stop comes.
            let n = fibrpc_domain::DEFAULT_MAX_N - i;
            tokio::spawn(async move { (n, client.call(n).await) })
        })
        .collect();
    let stats = first.stats.clone();
    eventually(LIMIT, "the first server answers something", || async {
        stats.answered() >= 1
    })
    .await;
    first.stop().await;
    let answered_by_first = stats.answered();
    assert!(
        answered_by_first < CALLS,
        "the first server answered everything before stopping"
    );

    let second = RunningServer::start(&connect(factory).await, config).await;
    for call in calls {
        let (n, outcome) = call.await.unwrap();
        assert_eq!(outcome.unwrap(), fib(n), "fib({n})");
    }
    assert_eq!(
        answered_by_first + second.stop().await.answered(),
        CALLS,
        "answered twice or lost"
    );
    factory.delete_queue(&queue).await;
}

/// The connection drops with calls in flight: they fail at once with `Disconnected`, not at
/// their deadline; the client opens a new reply address and later calls succeed.
pub async fn lost_connection_fails_calls_promptly_then_recovers(factory: &dyn TransportFactory) {
    let queue = queue(factory, "disconnect").await;
    let timeout = Duration::from_secs(30);
    let client = client(
        factory,
        ClientConfig {
            timeout,
            ..client_config(&queue)
        },
    )
    .await;
    let calls: Vec<_> = (0..5)
        .map(|n| {
            let client = client.clone();
            tokio::spawn(async move { client.call(n).await })
        })
        .collect();
    eventually(LIMIT, "calls are in flight", || async {
        client.stats().pending == 5
    })
    .await;

    let cut = Instant::now();
    if !factory.sever_connections().await {
        eprintln!("skipping: this adapter cannot sever its connections");
        return;
    }
    for call in calls {
        match call.await.unwrap() {
            Err(CallError::Transport(TransportError::Disconnected { .. })) => {}
            other => panic!("expected Disconnected, got {other:?}"),
        }
    }
    assert!(
        cut.elapsed() < timeout / 2,
        "calls waited for their deadline"
    );
    assert_eq!(client.stats().pending, 0);

    factory.declare_queue(&queue).await.unwrap();
    let server = RunningServer::start(&connect(factory).await, server_config(&queue)).await;
    eventually(LIMIT, "the reply address is opened again", || async {
        client.stats().reconnects == 1 && client.reply_address().is_some()
    })
    .await;
    assert_eq!(client.call(30).await.unwrap(), fib(30));
    server.stop().await;
    factory.delete_queue(&queue).await;
}

/// Thousands of calls nobody answers, many at a time: each times out, and afterwards the
/// client holds nothing for any of them.
pub async fn many_timed_out_calls_leave_nothing_behind(factory: &dyn TransportFactory) {
    const CALLS: u64 = 5_000;
    let queue = queue(factory, "timeouts").await;
    let timeout = Duration::from_millis(50);
    let client = client(
        factory,
        ClientConfig {
            timeout,
            max_in_flight: 500,
            ..client_config(&queue)
        },
    )
    .await;
    let calls = (0..CALLS).map(|n| {
        let client = client.clone();
        async move { client.call(n).await }
    });
    let outcomes = join_all(calls).await;
    assert!(outcomes
        .iter()
        .all(|outcome| *outcome == Err(CallError::Timeout(timeout))));
    assert_eq!(client.stats().pending, 0);
    factory.delete_queue(&queue).await;
}
