//! Server tests over mockall mocks of the server port: fib's service and a procedure of
//! serde types.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc_domain::Fibonacci;
use fibrpc_fib::Fib;
use fibrpc_ports::{
    Envelope, IncomingRequest, MockReplyTransport, MockRequestStream, MockSettle, RequestStream,
    TransportError,
};
use fibrpc_rpc::codec::{Codec, BINCODE};
use fibrpc_rpc::{
    Backoff, CallError, Expired, Fault, Limits, Procedure, RpcServer, Serde, ServerConfig,
    ServerState, Service, Wire,
};
use mockall::Sequence;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Answers with its request (the tests' handlers decide what it does).
struct Echo;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
enum EchoError {
    #[error("refused: {0}")]
    Refused(String),
}

impl Procedure for Echo {
    const NAME: &'static str = "test.echo";
    type Request = String;
    type Response = String;
    type Error = EchoError;
}

fn text_request(reply_to: Option<&str>, body: &str) -> Envelope {
    Envelope {
        correlation_id: Some("id-1".to_owned()),
        reply_to: reply_to.map(str::to_owned),
        body: body.as_bytes().to_vec(),
        ..Envelope::default()
    }
}

/// The replies a test's settle mocks were asked to send, with their addresses.
type Replied = Arc<Mutex<Vec<(String, Envelope)>>>;

/// A settle mock that sends its replies to `replied` (answering with `outcome`), and expects
/// exactly one ack that announces `done`, or none.
fn settle_mock(
    replied: &Replied,
    outcome: fn(&str) -> Result<(), TransportError>,
    ack: Option<&Arc<Notify>>,
) -> MockSettle {
    let mut settle = MockSettle::new();
    let record = replied.clone();
    settle.expect_reply().returning(move |reply_to, reply| {
        record.lock().unwrap().push((reply_to.to_owned(), reply));
        outcome(reply_to)
    });
    match ack {
        Some(done) => {
            let done = done.clone();
            settle.expect_ack().times(1).returning(move || {
                done.notify_one();
                Ok(())
            });
        }
        None => {
            settle.expect_ack().never();
        }
    }
    settle.expect_reject().never();
    settle
}

fn delivered(_: &str) -> Result<(), TransportError> {
    Ok(())
}

/// Serves the scripted requests with fib until `done` is notified, then shuts down.
async fn serve(requests: Vec<IncomingRequest>, done: Arc<Notify>) {
    let service = Fib::service(Fibonacci::default());
    serve_with(requests, done, service, ServerConfig::default()).await;
}

/// [`serve`] with `service`, under `config` (its queue and prefetch replaced).
async fn serve_with<S: Send + Sync + 'static>(
    requests: Vec<IncomingRequest>,
    done: Arc<Notify>,
    service: Service<S>,
    config: ServerConfig,
) {
    let mut transport = MockReplyTransport::new();
    transport.expect_flow().return_const(None);
    transport.expect_announce_procedures().return_const(());
    let mut script: VecDeque<IncomingRequest> = requests.into();
    let mut stream = MockRequestStream::new();
    stream
        .expect_next_request()
        .returning(move || script.pop_front().ok_or(TransportError::Cancelled));
    stream.expect_cancel().times(1).returning(|| Ok(()));
    let mut stream = Some(stream);
    transport.expect_announce_procedures().return_const(());
    transport
        .expect_consume_requests()
        .withf(|queue, prefetch| queue == "rpc" && *prefetch == 3)
        .times(1)
        .returning(move |_, _| Ok(Box::new(stream.take().unwrap()) as Box<dyn RequestStream>));
    let config = ServerConfig {
        queue: "rpc".to_owned(),
        prefetch: 3,
        // Never consume again within a test: the script ends the stream on purpose.
        reconnect: Backoff {
            initial: Duration::from_secs(3600),
            max: Duration::from_secs(3600),
        },
        ..config
    };
    let server = RpcServer::new(Arc::new(transport), config, service);
    tokio::time::timeout(Duration::from_secs(10), server.run(done.notified()))
        .await
        .expect("server did not stop")
        .unwrap();
}

#[tokio::test]
async fn replies_through_the_request_to_the_callers_address_then_acknowledges() {
    let done = Arc::new(Notify::new());
    let mut sequence = Sequence::new();
    let mut settle = MockSettle::new();
    settle
        .expect_reply()
        .withf(|reply_to, reply| {
            reply_to == "client-q"
                && reply.correlation_id.as_deref() == Some("id-1")
                && reply.content_type.as_deref() == Some("text/plain")
                && reply.body == b"832040"
                && reply.error.is_none()
        })
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _| Ok(()));
    let acked = done.clone();
    settle
        .expect_ack()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(move || {
            acked.notify_one();
            Ok(())
        });
    settle.expect_reject().never();
    let request = IncomingRequest::new(
        text_request(Some("client-q"), "30"),
        false,
        Box::new(settle),
    );
    serve(vec![request], done).await;
}

#[tokio::test]
async fn a_request_without_reply_to_is_acknowledged_unanswered() {
    let done = Arc::new(Notify::new());
    let replied = Replied::default();
    let settle = settle_mock(&replied, delivered, Some(&done));
    let request = IncomingRequest::new(text_request(None, "30"), false, Box::new(settle));
    serve(vec![request], done).await;
    assert!(replied.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_malformed_request_gets_a_marked_error_reply_and_is_acknowledged() {
    let done = Arc::new(Notify::new());
    let replied = Replied::default();
    let settle = settle_mock(&replied, delivered, Some(&done));
    let request = IncomingRequest::new(text_request(Some("c"), "thirty"), false, Box::new(settle));
    serve(vec![request], done).await;
    let (_, reply) = replied.lock().unwrap().pop().unwrap();
    assert!(reply.body.starts_with(b"error: invalid-request"));
    let mark = reply.error.expect("an error reply without its mark");
    assert_eq!(mark.kind, "invalid-request");
    assert!(mark.message.contains("thirty"), "{}", mark.message);
}

#[tokio::test]
async fn a_reply_to_a_vanished_caller_still_acknowledges() {
    let done = Arc::new(Notify::new());
    let replied = Replied::default();
    let gone = |queue: &str| {
        Err(TransportError::NoSuchQueue {
            queue: queue.to_owned(),
        })
    };
    let settle = settle_mock(&replied, gone, Some(&done));
    let request = IncomingRequest::new(text_request(Some("gone"), "3"), false, Box::new(settle));
    serve(vec![request], done).await;
    assert_eq!(replied.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_reply_lost_with_the_connection_leaves_the_request_for_redelivery() {
    let done = Arc::new(Notify::new());
    let mut settle = MockSettle::new();
    let replied = done.clone();
    settle.expect_reply().times(1).returning(move |_, _| {
        replied.notify_one();
        Err(TransportError::disconnected("test"))
    });
    settle.expect_ack().never();
    settle.expect_reject().never();
    let request = IncomingRequest::new(text_request(Some("c"), "3"), false, Box::new(settle));
    serve(vec![request], done).await;
}

#[tokio::test]
async fn every_request_of_a_burst_is_answered_once() {
    let done = Arc::new(Notify::new());
    let replied = Replied::default();
    let acks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let requests = (0..20)
        .map(|n| {
            let mut settle = MockSettle::new();
            let record = replied.clone();
            settle.expect_reply().times(1).returning(move |to, reply| {
                record.lock().unwrap().push((to.to_owned(), reply));
                Ok(())
            });
            let (acks, done) = (acks.clone(), done.clone());
            settle.expect_ack().times(1).returning(move || {
                if acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 19 {
                    done.notify_one();
                }
                Ok(())
            });
            IncomingRequest::new(
                text_request(Some("c"), &n.to_string()),
                false,
                Box::new(settle),
            )
        })
        .collect();
    serve(requests, done).await;
    let mut answered: Vec<String> = replied
        .lock()
        .unwrap()
        .iter()
        .map(|(_, reply)| String::from_utf8(reply.body.clone()).unwrap())
        .collect();
    answered.sort_by_key(|value| value.parse::<u64>().unwrap());
    let expected: Vec<String> = (0..20).map(|n| fibrpc_domain::fib(n).to_string()).collect();
    let mut expected_sorted = expected.clone();
    expected_sorted.sort_by_key(|value| value.parse::<u64>().unwrap());
    assert_eq!(answered, expected_sorted);
}

/// Echoes its request, or panics when asked to.
fn echo_service() -> Service<()> {
    Service::default().register(Echo, |_, text: String| async move {
        assert!(text != "panic", "asked to panic");
        Ok(text)
    })
}

fn named_request(procedure: Option<&str>, body: Vec<u8>) -> Envelope {
    Envelope {
        correlation_id: Some("id-1".to_owned()),
        reply_to: Some("c".to_owned()),
        content_type: Some(BINCODE.content_type().to_owned()),
        procedure: procedure.map(str::to_owned),
        body,
        ..Envelope::default()
    }
}

/// Serves one request with `service` and returns what its reply decodes to as an echo,
/// checking that its error mark says what its body does.
async fn echo_reply<S: Send + Sync + 'static>(
    request: Envelope,
    service: Service<S>,
    config: ServerConfig,
) -> Result<String, CallError<EchoError>> {
    let done = Arc::new(Notify::new());
    let replied = Replied::default();
    let settle = settle_mock(&replied, delivered, Some(&done));
    let request = IncomingRequest::new(request, false, Box::new(settle));
    serve_with(vec![request], done, service, config).await;
    let (_, reply) = replied.lock().unwrap().pop().unwrap();
    assert_eq!(reply.correlation_id.as_deref(), Some("id-1"));
    let content_type = reply.content_type.as_deref().unwrap();
    let codec = Codec::find(<Serde as Wire<Echo>>::CODECS, content_type).unwrap();
    let outcome = <Serde as Wire<Echo>>::decode_reply(codec, &reply.body, reply.error.as_ref());
    let kind = reply.error.as_ref().map(|mark| mark.kind.as_str());
    match &outcome {
        Ok(_) => assert_eq!(kind, None),
        Err(CallError::Remote(_)) => assert_eq!(kind, Some("error")),
        Err(CallError::Fault(fault)) => assert_eq!(kind, Some(fault.code())),
        Err(other) => panic!("not a reply: {other:?}"),
    }
    outcome
}

fn encoded(text: &str) -> Vec<u8> {
    <Serde as Wire<Echo>>::encode_request(BINCODE, &text.to_owned()).unwrap()
}

#[tokio::test]
async fn requests_go_to_the_procedure_they_name() {
    let service = echo_service().merge(Fib::service(Fibonacci::default()));
    let request = named_request(Some("test.echo"), encoded("hello"));
    assert_eq!(
        echo_reply(request, service, ServerConfig::default()).await,
        Ok("hello".to_owned())
    );
}

#[tokio::test]
async fn an_unknown_procedure_gets_an_error_reply_and_is_acknowledged() {
    let request = named_request(Some("no.such"), encoded("hello"));
    assert_eq!(
        echo_reply(request, echo_service(), ServerConfig::default()).await,
        Err(CallError::Fault(Fault::UnknownProcedure {
            name: Some("no.such".to_owned())
        }))
    );
    // A procedure's own error is marked too.
    let refusing = Service::default().register(Echo, |_, text: String| async move {
        Err::<String, _>(EchoError::Refused(text))
    });
    let request = named_request(Some("test.echo"), encoded("no"));
    assert_eq!(
        echo_reply(request, refusing, ServerConfig::default()).await,
        Err(CallError::Remote(EchoError::Refused("no".to_owned())))
    );
    // Without an unnamed procedure, a request that names none is unknown too.
    let request = named_request(None, encoded("hello"));
    assert_eq!(
        echo_reply(request, echo_service(), ServerConfig::default()).await,
        Err(CallError::Fault(Fault::UnknownProcedure { name: None }))
    );
}

/// The handler runs in the trace its caller sent (its own calls join it); a malformed
/// `traceparent` starts a new trace, and the request is answered all the same.
#[tokio::test]
async fn handlers_run_in_the_callers_trace_and_a_malformed_one_is_ignored() {
    let trace_of_handler = || {
        Service::default().register(Echo, |_, _: String| async move {
            let context = fibrpc_rpc::TraceContext::current().expect("no trace context");
            Ok(context.trace_id().to_string())
        })
    };
    let traced = |traceparent: &str| Envelope {
        traceparent: Some(traceparent.to_owned()),
        ..named_request(Some("test.echo"), encoded("which trace?"))
    };
    let sent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let continued = echo_reply(traced(sent), trace_of_handler(), ServerConfig::default()).await;
    assert_eq!(continued.unwrap(), "4bf92f3577b34da6a3ce929d0e0e4736");
    let malformed = traced("00-4bf92f3577b34da6a3ce929d0e0e4736-not-hex");
    let fresh = echo_reply(malformed, trace_of_handler(), ServerConfig::default()).await;
    let fresh = fresh.expect("a malformed traceparent must not fail the request");
    assert_eq!(fresh.len(), 32);
    assert_ne!(fresh, "4bf92f3577b34da6a3ce929d0e0e4736");
}

#[tokio::test]
async fn a_panicking_handler_gets_an_internal_error_reply_and_is_acknowledged() {
    let request = named_request(Some("test.echo"), encoded("panic"));
    let reply = echo_reply(request, echo_service(), ServerConfig::default()).await;
    assert!(
        matches!(&reply, Err(CallError::Fault(Fault::Internal { reason })) if reason.contains("asked to panic")),
        "{reply:?}"
    );
}

#[tokio::test]
async fn a_procedure_may_set_its_own_body_limit() {
    let limits = Limits {
        max_body_bytes: Some(8),
        ..Limits::default()
    };
    let service = || {
        Service::default().register_with(Echo, limits, |_, text: String| async move { Ok(text) })
    };
    let request = named_request(Some("test.echo"), encoded("0123456789"));
    assert_eq!(
        echo_reply(request, service(), ServerConfig::default()).await,
        Err(CallError::Fault(Fault::BodyTooLarge { size: 11, max: 8 }))
    );
    // Within the procedure's limit, above the server's.
    let config = ServerConfig {
        max_body_bytes: 4,
        ..ServerConfig::default()
    };
    let request = named_request(Some("test.echo"), encoded("0123"));
    assert_eq!(
        echo_reply(request, service(), config).await,
        Ok("0123".to_owned())
    );
}

#[tokio::test]
async fn expired_requests_are_skipped_unless_the_procedure_runs_them() {
    let past = Some(std::time::Instant::now() - Duration::from_secs(1));
    // Skipped: acknowledged, no reply.
    let done = Arc::new(Notify::new());
    let replied = Replied::default();
    let request = IncomingRequest::new(
        Envelope {
            deadline: past,
            ..named_request(Some("test.echo"), encoded("late"))
        },
        false,
        Box::new(settle_mock(&replied, delivered, Some(&done))),
    );
    serve_with(vec![request], done, echo_service(), ServerConfig::default()).await;
    assert!(replied.lock().unwrap().is_empty());
    // Run: answered all the same.
    let limits = Limits {
        expired: Some(Expired::Run),
        ..Limits::default()
    };
    let service =
        Service::default().register_with(Echo, limits, |_, text: String| async move { Ok(text) });
    let request = Envelope {
        deadline: past,
        ..named_request(Some("test.echo"), encoded("late"))
    };
    assert_eq!(
        echo_reply(request, service, ServerConfig::default()).await,
        Ok("late".to_owned())
    );
}

#[test]
#[should_panic(expected = "two procedures named \"test.echo\"")]
fn two_procedures_of_one_name_are_refused() {
    let _ = echo_service().merge(echo_service());
}

/// The readiness follows the server: consuming, reconnecting after a lost connection (for
/// as long as its backoff lasts), consuming again, draining the requests in flight at
/// shutdown, stopped.
#[tokio::test(start_paused = true)]
async fn readiness_follows_consuming_reconnecting_and_draining() {
    let broker = fibrpc_in_memory::InMemoryBroker::new();
    broker.declare_queue("rpc_queue");
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let (enter, held) = (entered.clone(), release.clone());
    let slow = Service::default().register(Echo, move |_, text: String| {
        let (enter, held) = (enter.clone(), held.clone());
        async move {
            enter.notify_one();
            held.notified().await;
            Ok(text)
        }
    });
    let config = ServerConfig {
        reconnect: Backoff {
            initial: Duration::from_secs(60),
            max: Duration::from_secs(60),
        },
        ..ServerConfig::default()
    };
    let server = RpcServer::new(Arc::new(broker.connect()), config, slow);
    let mut readiness = server.readiness();
    assert_eq!(readiness.state(), ServerState::Starting);
    let server = server.spawn();
    let ready = readiness.wait_for(ServerState::is_ready).await;
    assert_eq!(ready, ServerState::Consuming);

    broker.disconnect_all();
    let lost = readiness.wait_for(|state| !state.is_ready()).await;
    assert_eq!(lost, ServerState::Reconnecting);
    // Paused time runs on to the end of the backoff once everything waits.
    let back = readiness.wait_for(ServerState::is_ready).await;
    assert_eq!(back, ServerState::Consuming);

    let patient = fibrpc_rpc::ClientConfig {
        timeout: Duration::from_secs(3600),
        ..fibrpc_rpc::ClientConfig::default()
    };
    let client = fibrpc_rpc::RpcClient::connect(Arc::new(broker.connect()), patient)
        .await
        .unwrap();
    let call = tokio::spawn(async move { client.call::<Echo>("held".to_owned()).await });
    entered.notified().await;
    let stopping = tokio::spawn(server.stop());
    let draining = readiness.wait_for(|state| !state.is_ready()).await;
    assert_eq!(draining, ServerState::Draining);
    release.notify_one();
    assert_eq!(call.await.unwrap().unwrap(), "held");
    stopping.await.unwrap().unwrap();
    assert_eq!(readiness.state(), ServerState::Stopped);
}

/// Every server answers discovery: fib and a user's procedure, each with its flags and
/// content types, and discovery itself, sorted by name, over bincode and JSON alike.
#[tokio::test]
async fn a_server_lists_what_it_serves() {
    use fibrpc_rpc::{codec, ClientConfig, ProcedureInfo, Procedures, RpcClient};
    let broker = fibrpc_in_memory::InMemoryBroker::new();
    let transport = Arc::new(broker.connect());
    let service = Fib::service(Fibonacci::default()).merge(echo_service());
    let mut server = RpcServer::new(transport.clone(), ServerConfig::default(), service).spawn();
    server.ready().await.unwrap();
    let both = ["application/x-bincode", "application/json"].map(str::to_owned);
    let expected = vec![
        ProcedureInfo {
            name: "fib".to_owned(),
            idempotent: true,
            content_types: vec![
                "application/x-bincode".to_owned(),
                "application/json".to_owned(),
                "text/plain".to_owned(),
            ],
        },
        ProcedureInfo {
            name: "fibrpc.procedures".to_owned(),
            idempotent: true,
            content_types: both.to_vec(),
        },
        ProcedureInfo {
            name: "test.echo".to_owned(),
            idempotent: false,
            content_types: both.to_vec(),
        },
    ];
    for codec in [codec::BINCODE, codec::JSON] {
        let config = ClientConfig {
            codec,
            ..ClientConfig::default()
        };
        let client = RpcClient::connect(transport.clone(), config).await.unwrap();
        assert_eq!(client.call::<Procedures>(()).await.unwrap(), expected);
    }
    server.stop().await.unwrap();
}

/// With tracing off the request is answered all the same, its handler outside any trace
/// (whatever `traceparent` came with it).
#[tokio::test]
async fn with_tracing_off_a_handler_runs_outside_any_trace() {
    let traced = Service::default().register(Echo, |_, _: String| async move {
        Ok(format!("{:?}", fibrpc_rpc::TraceContext::current()))
    });
    let request = Envelope {
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
        ..named_request(Some("test.echo"), encoded("which trace?"))
    };
    let config = ServerConfig {
        trace: false,
        ..ServerConfig::default()
    };
    assert_eq!(echo_reply(request, traced, config).await.unwrap(), "None");
}
