//! Client unit tests over mockall mocks of the client port.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc_domain::fib;
use fibrpc_ports::{Envelope, MockReplyInbox, MockRequestTransport, ReplyInbox, TransportError};

use fibrpc_fib::{Fib, FibWire};
use fibrpc_rpc::codec::BINCODE;
use fibrpc_rpc::{
    Backoff, CallError, ClientConfig, ClientStats, Endpoint, Procedure, RetryPolicy, RpcClient,
    TimedOut, Wire,
};
use serde::{Deserialize, Serialize};

/// A procedure of serde types that is not idempotent.
struct Echo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("refused")]
struct Refused;

impl Procedure for Echo {
    const NAME: &'static str = "test.echo";
    type Request = String;
    type Response = String;
    type Error = Refused;
}

/// A mock inbox that hands out what the test sends it, and reports a lost connection when
/// the test drops its sender. The wait runs in `block_in_place` because mock methods return
/// at once; tests using it run on the multi-threaded runtime.
fn inbox(address: &'static str) -> (MockReplyInbox, std_mpsc::Sender<Envelope>) {
    let (replies, received) = std_mpsc::channel::<Envelope>();
    let received = Mutex::new(received);
    let mut inbox = MockReplyInbox::new();
    inbox.expect_address().return_const(address.to_owned());
    inbox.expect_resumable().return_const(false);
    inbox.expect_next_reply().returning(move || {
        let received = received.lock().unwrap();
        tokio::task::block_in_place(|| received.recv_timeout(Duration::from_secs(10)))
            .map_err(|_| TransportError::disconnected("test dropped the inbox"))
    });
    (inbox, replies)
}

fn config() -> ClientConfig {
    ClientConfig {
        queue: "q".to_owned(),
        timeout: Duration::from_secs(5),
        reconnect: Backoff {
            initial: Duration::from_millis(1),
            max: Duration::from_millis(5),
        },
        ..ClientConfig::default()
    }
}

fn expect_inboxes(transport: &mut MockRequestTransport, inboxes: Vec<MockReplyInbox>) {
    let mut inboxes = inboxes.into_iter();
    transport
        .expect_open_reply_inbox()
        .returning(move || match inboxes.next() {
            Some(inbox) => Ok(Box::new(inbox) as Box<dyn ReplyInbox>),
            None => Err(TransportError::disconnected("test: no more inboxes")),
        });
    // These inboxes die with their connection, as an exclusive AMQP reply queue does.
    transport
        .expect_resume_reply_inbox()
        .returning(|_| Ok(None));
}

fn reply_to(request: &Envelope, n: u64) -> Envelope {
    Envelope {
        correlation_id: request.correlation_id.clone(),
        content_type: Some(BINCODE.content_type().to_owned()),
        body: FibWire::encode_reply(BINCODE, &Ok(fib(n))).unwrap(),
        ..Envelope::default()
    }
}

/// A transport that opens `inboxes` in turn (and fails to open more), and passes the
/// requests it is given to `sent`.
fn transport(
    inboxes: Vec<MockReplyInbox>,
    sent: std_mpsc::Sender<Envelope>,
) -> MockRequestTransport {
    let mut transport = MockRequestTransport::new();
    expect_inboxes(&mut transport, inboxes);
    // Asked when a call timed out: it sees nothing wrong.
    transport.expect_stall().returning(|_| None);
    let sent = Mutex::new(sent);
    transport
        .expect_send_request()
        .withf(|queue, _| queue == "q")
        .returning(move |_, request| {
            let _ = sent.lock().unwrap().send(request);
            Ok(())
        });
    transport
}

/// A client over one mock inbox at `address`, calling fib(`n`): the client, the call, the
/// request as sent, and the sender of the inbox's replies.
async fn one_fib_call(
    address: &'static str,
    n: u64,
) -> (
    RpcClient,
    tokio::task::JoinHandle<
        Result<<Fib as Endpoint>::Response, CallError<<Fib as Endpoint>::Error>>,
    >,
    Envelope,
    std_mpsc::Sender<Envelope>,
) {
    let (inbox, replies) = inbox(address);
    let (sent, requests) = std_mpsc::channel();
    let client = RpcClient::connect(Arc::new(transport(vec![inbox], sent)), config())
        .await
        .unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call::<Fib>(n).await }
    });
    let request = tokio::task::spawn_blocking(move || requests.recv().unwrap())
        .await
        .unwrap();
    (client, call, request, replies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_call_sends_a_complete_request_and_takes_its_reply() {
    let (client, call, request, replies) = one_fib_call("reply-here", 90).await;
    assert_eq!(request.reply_to.as_deref(), Some("reply-here"));
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-bincode")
    );
    let id = request.correlation_id.clone().unwrap();
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    let deadline = request.deadline.unwrap();
    assert!(deadline > std::time::Instant::now() + Duration::from_secs(4));
    assert_eq!(request.procedure.as_deref(), Some("fib"));
    assert_eq!(FibWire::decode_request(BINCODE, &request.body), Ok(90));

    replies.send(reply_to(&request, 90)).unwrap();
    assert_eq!(call.await.unwrap().unwrap(), fib(90));
    assert_eq!(client.stats().pending, 0);
    drop(replies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_in_another_codec_than_the_request_is_refused_not_misread() {
    let (_client, call, request, replies) = one_fib_call("r", 30).await;
    // What the tutorial's text servers answer to a bincode body they cannot parse.
    replies
        .send(Envelope {
            correlation_id: request.correlation_id.clone(),
            body: b"0".to_vec(),
            ..Envelope::default()
        })
        .unwrap();
    match call.await.unwrap() {
        Err(CallError::BadReply { reason }) => {
            assert!(reason.contains("text/plain reply"), "{reason}")
        }
        other => panic!("a text answer to a bincode request was taken: {other:?}"),
    }
    drop(replies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reply_for_another_call_is_not_delivered() {
    let (inbox, replies) = inbox("r");
    let (sent, requests) = std_mpsc::channel();
    let client = RpcClient::connect(Arc::new(transport(vec![inbox], sent)), config())
        .await
        .unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move {
            client
                .call_with_timeout::<Fib>(7, Duration::from_millis(300))
                .await
        }
    });
    let request = tokio::task::spawn_blocking(move || requests.recv().unwrap())
        .await
        .unwrap();
    let mut stranger = reply_to(&request, 8);
    stranger.correlation_id = Some("someone-else".to_owned());
    replies.send(stranger).unwrap();

    assert_eq!(
        call.await.unwrap(),
        Err(CallError::Timeout(TimedOut::after(Duration::from_millis(
            300
        ))))
    );
    assert_eq!(
        client.stats(),
        ClientStats {
            pending: 0,
            unmatched_replies: 1,
            reconnects: 0,
            retries: 0,
            resumed: 0
        }
    );
    drop(replies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_send_fails_the_call_at_once() {
    let (inbox, replies) = inbox("r");
    let mut transport = MockRequestTransport::new();
    expect_inboxes(&mut transport, vec![inbox]);
    transport
        .expect_send_request()
        .times(1)
        .returning(|queue, _| {
            Err(TransportError::NoSuchQueue {
                queue: queue.to_owned(),
            })
        });
    let client = RpcClient::connect(Arc::new(transport), config())
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    assert_eq!(
        client.call::<Fib>(1).await,
        Err(CallError::Transport(TransportError::NoSuchQueue {
            queue: "q".to_owned()
        }))
    );
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(client.stats().pending, 0);
    drop(replies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_inbox_fails_calls_in_flight_and_a_new_one_is_opened() {
    let (first, first_replies) = inbox("first");
    let (second, second_replies) = inbox("second");
    let (sent, requests) = std_mpsc::channel();
    let client = RpcClient::connect(Arc::new(transport(vec![first, second], sent)), config())
        .await
        .unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call::<Fib>(5).await }
    });
    let requests = Arc::new(Mutex::new(requests));
    let next_request = || {
        let requests = requests.clone();
        tokio::task::spawn_blocking(move || requests.lock().unwrap().recv().unwrap())
    };
    assert_eq!(
        next_request().await.unwrap().reply_to.as_deref(),
        Some("first")
    );

    let lost = tokio::time::Instant::now();
    drop(first_replies);
    assert!(matches!(
        call.await.unwrap(),
        Err(CallError::Transport(TransportError::Disconnected { .. }))
    ));
    assert!(
        lost.elapsed() < Duration::from_secs(1),
        "the call waited for its deadline"
    );
    assert_eq!(client.stats().pending, 0);

    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call::<Fib>(6).await }
    });
    let request = next_request().await.unwrap();
    assert_eq!(request.reply_to.as_deref(), Some("second"));
    second_replies.send(reply_to(&request, 6)).unwrap();
    assert_eq!(call.await.unwrap().unwrap(), fib(6));
    drop(second_replies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_retry_policy_sends_again_after_a_lost_connection() {
    for (retry, expect_success) in [
        (RetryPolicy::Never, false),
        (
            RetryPolicy::Idempotent {
                backoff: config().reconnect,
            },
            true,
        ),
    ] {
        let (inbox, replies) = inbox("r");
        let mut transport = MockRequestTransport::new();
        expect_inboxes(&mut transport, vec![inbox]);
        let mut attempts = 0;
        // Shared so the test can drop the only sender at the end, which ends the inbox.
        let replies = Arc::new(Mutex::new(Some(replies)));
        let replies_for_send = replies.clone();
        transport
            .expect_send_request()
            .returning(move |_, request| {
                attempts += 1;
                if attempts == 1 {
                    return Err(TransportError::disconnected("test: publish failed"));
                }
                if let Some(replies) = replies_for_send.lock().unwrap().as_ref() {
                    let _ = replies.send(reply_to(&request, 12));
                }
                Ok(())
            });
        let client = RpcClient::connect(Arc::new(transport), ClientConfig { retry, ..config() })
            .await
            .unwrap();
        let outcome = client.call::<Fib>(12).await;
        assert_eq!(outcome.is_ok(), expect_success, "{retry:?}: {outcome:?}");
        replies.lock().unwrap().take();
    }
}

#[tokio::test]
async fn connect_reports_a_transport_that_cannot_open_an_inbox() {
    let mut transport = MockRequestTransport::new();
    transport.expect_open_reply_inbox().times(1).returning(|| {
        Err(TransportError::Unreachable {
            address: "amqp://127.0.0.1:1".to_owned(),
            reason: "refused".to_owned(),
        })
    });
    let outcome = RpcClient::connect(Arc::new(transport), config()).await;
    assert!(matches!(outcome, Err(TransportError::Unreachable { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_named_procedure_is_named_and_not_retried_unless_idempotent() {
    let (inbox, replies) = inbox("r");
    let mut transport = MockRequestTransport::new();
    expect_inboxes(&mut transport, vec![inbox]);
    transport
        .expect_send_request()
        .times(1)
        .withf(|_, request| {
            request.procedure.as_deref() == Some("test.echo")
                && request.content_type.as_deref() == Some("application/x-bincode")
        })
        .returning(|_, _| Err(TransportError::disconnected("test: publish failed")));
    let retry = RetryPolicy::Idempotent {
        backoff: config().reconnect,
    };
    let client = RpcClient::connect(Arc::new(transport), ClientConfig { retry, ..config() })
        .await
        .unwrap();
    // Echo is not idempotent: a call that may have run is not sent again.
    let outcome = client.call::<Echo>("line".to_owned()).await;
    assert!(
        matches!(
            outcome,
            Err(CallError::Transport(TransportError::Disconnected { .. }))
        ),
        "{outcome:?}"
    );
    assert_eq!(client.stats().retries, 0);
    drop(replies);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_tracing_off_a_request_carries_no_traceparent() {
    let (inbox, replies) = inbox("reply-here");
    let (sent, requests) = std_mpsc::channel();
    let config = ClientConfig {
        trace: false,
        ..config()
    };
    let client = RpcClient::connect(Arc::new(transport(vec![inbox], sent)), config)
        .await
        .unwrap();
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call::<Fib>(20).await }
    });
    let request = tokio::task::spawn_blocking(move || requests.recv().unwrap())
        .await
        .unwrap();
    assert_eq!(request.traceparent, None);
    replies.send(reply_to(&request, 20)).unwrap();
    assert_eq!(call.await.unwrap().unwrap(), fib(20));
    drop(replies);
}
