//! Servers of several procedures: dispatch by the name a request carries, an error reply at
//! once for a procedure the server does not host, and bounds a procedure sets for itself.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fibrpc_domain::DomainError;
use fibrpc_domain::{fib, Fibonacci};
use fibrpc_examples::text::{self, Count, Counts, TextError, Top};
use fibrpc_fib::Fib;
use fibrpc_ports::Envelope;
use fibrpc_rpc::codec::{BINCODE, JSON};
use fibrpc_rpc::{CallError, ClientConfig, Fault, Limits, Procedure, Service};
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::{
    client, client_config, connect, queue, raw, raw_call, server_config, RunningServer, LIMIT,
};
use crate::{eventually, TransportFactory};

/// How long an error reply may take: a round trip, not a deadline (calls wait 5 s).
const PROMPT: Duration = Duration::from_secs(2);

/// A request for a procedure the server does not host gets `UnknownProcedure` at once, in
/// the request's codec: a named one from our client (the gate, on a text-statistics server), and the tutorial's nameless request to a
/// server with no unnamed procedure. The server goes on serving.
pub async fn unknown_procedures_get_an_error_reply_at_once(factory: &dyn TransportFactory) {
    let queue = queue(factory, "unknown-procedure").await;
    let service = text::service(1000);
    let server = RunningServer::start(
        connect(factory).await.replies,
        server_config(&queue),
        service,
    );
    server.consuming().await;
    let client = client(factory, client_config(&queue)).await;

    let started = Instant::now();
    let outcome = client.call::<Gate>(1).await;
    let took = started.elapsed();
    assert_eq!(
        outcome,
        Err(CallError::Fault(Fault::UnknownProcedure {
            name: Some(Gate::NAME.to_owned())
        }))
    );
    assert!(took < PROMPT, "the error reply took {took:?}");
    eprintln!("UnknownProcedure reply after {took:?}");

    // A server without fib knows no "fib"; nor, without fib, the text codec, and says so
    // in its own codec, marked as an error reply.
    for (codec, fault) in [
        (
            fibrpc_rpc::codec::BINCODE,
            Fault::UnknownProcedure {
                name: Some("fib".to_owned()),
            },
        ),
        (
            fibrpc_fib::TEXT,
            Fault::UnsupportedContentType {
                content_type: "text/plain".to_owned(),
            },
        ),
    ] {
        let config = ClientConfig {
            codec,
            ..client_config(&queue)
        };
        let fib_client = super::client(factory, config).await;
        assert_eq!(
            fib_client.call::<Fib>(30).await,
            Err(CallError::Fault(fault)),
            "{codec:?}"
        );
    }
    // The tutorial's request names none, and this server routes unnamed requests nowhere:
    // the reply is marked as a fault outside its body, for any language to see.
    let reply = raw_call(&connect(factory).await, &queue, raw(None, b"30")).await;
    assert_eq!(
        reply.error.as_ref().map(|mark| mark.kind.as_str()),
        Some("unknown-procedure"),
        "{reply:?}"
    );

    assert!(client
        .call::<Count>("still serving".to_owned())
        .await
        .is_ok());
    let stats = server.stop().await;
    assert_eq!((stats.error_replies(), stats.answered()), (4, 1));
    crate::delete_queue(factory, &queue).await;
}

/// fib and text statistics on one queue, called at once by the tutorial's text wire, fib
/// clients in both codecs and text-statistics clients: each request reaches its procedure.
pub async fn several_services_share_a_queue(factory: &dyn TransportFactory) {
    const EACH: u64 = 20;
    let queue = queue(factory, "several").await;
    let service = Fib::service(Fibonacci::default()).merge(text::service(1000));
    let server = RunningServer::start(
        connect(factory).await.replies,
        server_config(&queue),
        service,
    );
    server.consuming().await;
    let binary = client(factory, client_config(&queue)).await;
    let config = ClientConfig {
        codec: fibrpc_fib::TEXT,
        ..client_config(&queue)
    };
    let text = client(factory, config).await;

    let mut calls = tokio::task::JoinSet::new();
    for i in 0..EACH {
        let (binary, text) = (binary.clone(), text.clone());
        calls.spawn(async move {
            assert_eq!(binary.call::<Fib>(i).await.unwrap(), fib(i));
            assert_eq!(text.call::<Fib>(i + 100).await.unwrap(), fib(i + 100));
            let words = "fib ".repeat(i as usize + 1);
            let counts = binary.call::<Count>(words).await.unwrap();
            assert_eq!(
                counts,
                Counts {
                    lines: 1,
                    words: i + 1,
                    chars: 4 * (i + 1)
                }
            );
        });
    }
    let connection = connect(factory).await;
    let reply = raw_call(&connection, &queue, raw(None, b"30")).await;
    assert_eq!(reply.body, b"832040");
    assert_eq!(reply.content_type.as_deref(), Some("text/plain"));
    while let Some(call) = calls.join_next().await {
        call.unwrap();
    }
    // The tally, the service's state, holds every word counted: 1 + 2 + ... + EACH.
    let top = binary.call::<Top>(1).await.unwrap();
    assert_eq!(top, vec![("fib".to_owned(), EACH * (EACH + 1) / 2)]);
    let answered = server.stop().await.answered();
    assert_eq!(answered, 3 * EACH + 2);
    crate::delete_queue(factory, &queue).await;
}

/// Waits at a gate, counting how many wait at once.
struct Gate;

impl Procedure for Gate {
    const NAME: &'static str = "conformance.gate";
    type Request = u64;
    type Response = u64;
    type Error = TextError;
}

struct Gated {
    inside: AtomicUsize,
    most_inside: AtomicUsize,
    /// Closed until the scenario opens it.
    open: Semaphore,
}

/// A procedure bounded to 2 requests at once, on a server that handles 16: 8 calls at once
/// run 2 at a time, and fib calls to the same server go on meanwhile.
pub async fn a_procedure_bounds_its_own_concurrency(factory: &dyn TransportFactory) {
    const CALLS: u64 = 8;
    let queue = queue(factory, "bounded").await;
    let gated = Arc::new(Gated {
        inside: AtomicUsize::new(0),
        most_inside: AtomicUsize::new(0),
        open: Semaphore::new(0),
    });
    let limits = Limits {
        concurrency: Some(2),
        ..Limits::default()
    };
    let service = Service::new(gated.clone())
        .register_with(Gate, limits, |gated, i| async move {
            let inside = gated.inside.fetch_add(1, Ordering::SeqCst) + 1;
            gated.most_inside.fetch_max(inside, Ordering::SeqCst);
            let _pass = gated.open.acquire().await;
            gated.inside.fetch_sub(1, Ordering::SeqCst);
            Ok(i)
        })
        .merge(Fib::service(Fibonacci::default()));
    let config = fibrpc_rpc::ServerConfig {
        concurrency: 16,
        prefetch: 16,
        ..server_config(&queue)
    };
    let server = RunningServer::start(connect(factory).await.replies, config, service);
    server.consuming().await;
    let config = ClientConfig {
        timeout: LIMIT,
        ..client_config(&queue)
    };
    let client = client(factory, config).await;
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move { client.call::<Gate>(i).await })
        })
        .collect();
    eventually(LIMIT, "two calls are at the gate", || async {
        gated.inside.load(Ordering::SeqCst) == 2
    })
    .await;
    // The server has slots left: another procedure is not held up by this one's bound.
    assert_eq!(client.call::<Fib>(30).await.unwrap(), fib(30));
    assert_eq!(
        gated.inside.load(Ordering::SeqCst),
        2,
        "past the procedure's bound"
    );
    gated.open.add_permits(CALLS as usize);
    for (i, call) in calls.into_iter().enumerate() {
        assert_eq!(call.await.unwrap(), Ok(i as u64));
    }
    assert_eq!(gated.most_inside.load(Ordering::SeqCst), 2);
    assert_eq!(server.stop().await.answered(), CALLS + 1);
    crate::delete_queue(factory, &queue).await;
}

/// The JSON wire, spoken by every serde procedure and by fib: a JSON client's calls come back
/// typed; a request in JSON from anyone is answered in JSON, a success with the response's
/// JSON itself, an error and a fault marked outside the body (`Envelope::error`) with the
/// kind in the body too; and bincode stays the client's default.
pub async fn json_calls_round_trip_and_error_replies_are_marked(factory: &dyn TransportFactory) {
    let queue = queue(factory, "json").await;
    let service = Fib::service(Fibonacci::with_max_n(1000)).merge(text::service(1000));
    let server = RunningServer::start(
        connect(factory).await.replies,
        server_config(&queue),
        service,
    );
    assert_eq!(
        ClientConfig::default().codec,
        BINCODE,
        "bincode stays the default"
    );
    let config = ClientConfig {
        codec: JSON,
        ..client_config(&queue)
    };
    let json = client(factory, config).await;
    let counts = json.call::<Count>("a b c".to_owned()).await.unwrap();
    assert_eq!(
        counts,
        Counts {
            lines: 1,
            words: 3,
            chars: 5
        }
    );
    assert_eq!(json.call::<Fib>(100).await.unwrap(), fib(100));
    assert_eq!(
        json.call::<Fib>(1001).await,
        Err(CallError::Remote(DomainError::AboveBound {
            n: 1001,
            max: 1000
        }))
    );
    assert_eq!(
        json.call::<Gate>(1).await,
        Err(CallError::Fault(Fault::UnknownProcedure {
            name: Some(Gate::NAME.to_owned())
        }))
    );

    // As another language sends it.
    let connection = connect(factory).await;
    let call = |procedure: &str, body: &str| Envelope {
        procedure: Some(procedure.to_owned()),
        ..raw(Some("application/json"), body.as_bytes())
    };
    let reply = raw_call(&connection, &queue, call("text.count", r#""a b c""#)).await;
    assert_eq!(reply.content_type.as_deref(), Some("application/json"));
    assert_eq!(reply.error, None);
    assert_eq!(
        String::from_utf8(reply.body).unwrap(),
        r#"{"lines":1,"words":3,"chars":5}"#
    );
    let reply = raw_call(&connection, &queue, call("fib", "100")).await;
    assert_eq!(reply.body, br#""354224848179261915075""#);
    let marked = |reply: &Envelope| {
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let mark = reply
            .error
            .as_ref()
            .expect("an error reply without its mark");
        assert_eq!(body["kind"], mark.kind.as_str(), "{body}");
        assert_eq!(body["message"], mark.message.as_str(), "{body}");
        (mark.kind.clone(), body)
    };
    let (kind, body) = marked(&raw_call(&connection, &queue, call("fib", "1001")).await);
    assert_eq!(kind, "error");
    assert_eq!(body["error"], serde_json::json!({"n": 1001, "max": 1000}));
    let (kind, body) = marked(&raw_call(&connection, &queue, call("no.such", "1")).await);
    assert_eq!(kind, "unknown-procedure");
    assert_eq!(body["name"], "no.such");
    let (kind, _) = marked(&raw_call(&connection, &queue, call("text.count", "3")).await);
    assert_eq!(kind, "invalid-request");
    server.stop().await;
    crate::delete_queue(factory, &queue).await;
}
