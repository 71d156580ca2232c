//! fib's wire: typed errors in both codecs, the tutorial's text, hostile input, late and
//! anonymous requests, and a graceful shutdown in the middle of long computations.

use std::time::Duration;

use fibrpc_domain::{fib, DomainError, Fibonacci};
use fibrpc_fib::{Fib, FibWire};
use fibrpc_ports::Envelope;
use fibrpc_rpc::codec::{Codec, BINCODE, BINCODE_CONTENT_TYPE, JSON};
use fibrpc_rpc::{CallError, ClientConfig, ServerConfig, TimedOut, Wire};

use super::{
    bare_consumer, client, client_config, connect, fib_server, queue, raw, raw_call, server_config,
    skipped, take_request, RunningServer, LIMIT,
};
use crate::{eventually, Guarantee, TransportFactory};

/// The error code of a fib reply, or `answered`; checks that the reply's error mark says the
/// same as its body.
fn reply_code(reply: &Envelope) -> &'static str {
    let content_type = reply
        .content_type
        .as_deref()
        .expect("a reply without content type");
    let codec = Codec::find(<FibWire as Wire<Fib>>::CODECS, content_type).unwrap();
    let mark = reply.error.as_ref().map(|mark| mark.kind.as_str());
    let (code, marked) = match FibWire::decode_reply(codec, &reply.body, reply.error.as_ref()) {
        Ok(_) => ("answered", None),
        Err(CallError::Remote(DomainError::AboveBound { .. })) => ("above-bound", Some("error")),
        Err(CallError::Fault(fault)) => (fault.code(), Some(fault.code())),
        Err(other) => panic!("not a reply: {other:?}"),
    };
    assert_eq!(mark, marked, "the error mark of a {code} reply");
    code
}

pub async fn remote_errors_are_typed(factory: &dyn TransportFactory) {
    let queue = queue(factory, "remote-error").await;
    let service = Fib::service(Fibonacci::with_max_n(1000));
    let server = RunningServer::start(
        connect(factory).await.replies,
        server_config(&queue),
        service,
    );
    server.consuming().await;
    for codec in [fibrpc_rpc::codec::BINCODE, fibrpc_fib::TEXT] {
        let config = ClientConfig {
            codec,
            ..client_config(&queue)
        };
        let client = client(factory, config).await;
        assert_eq!(
            client.call::<Fib>(1001).await,
            Err(CallError::Remote(DomainError::AboveBound {
                n: 1001,
                max: 1000
            })),
            "{codec:?}"
        );
        assert_eq!(
            client.call::<Fib>(1000).await.unwrap(),
            fib(1000),
            "{codec:?}"
        );
    }
    assert_eq!(server.stop().await.error_replies(), 2);
    crate::delete_queue(factory, &queue).await;
}

pub async fn late_reply_is_dropped_and_counted(factory: &dyn TransportFactory) {
    let queue = queue(factory, "late").await;
    let timeout = Duration::from_millis(200);
    let config = ClientConfig {
        timeout,
        ..client_config(&queue)
    };
    let client = client(factory, config).await;
    let slow = connect(factory).await;
    let mut stream = bare_consumer(&slow, &queue, 1).await;
    let call = tokio::spawn({
        let client = client.clone();
        async move { client.call::<Fib>(30).await }
    });
    let request = take_request(&mut stream).await;
    assert_eq!(
        call.await.unwrap(),
        Err(CallError::Timeout(TimedOut::after(timeout)))
    );
    assert_eq!(client.stats().pending, 0);

    let late = Envelope {
        correlation_id: request.envelope.correlation_id.clone(),
        content_type: Some(BINCODE_CONTENT_TYPE.to_owned()),
        body: FibWire::encode_reply(BINCODE, &Ok(fib(30))).unwrap(),
        ..Envelope::default()
    };
    let reply_to = request.envelope.reply_to.clone().unwrap();
    let mut request = request;
    request.reply(&reply_to, late).await.unwrap();
    request.ack().await.unwrap();
    eventually(LIMIT, "the late reply is counted", || async {
        client.stats().unmatched_replies == 1
    })
    .await;
    assert_eq!(client.stats().pending, 0);
    crate::delete_queue(factory, &queue).await;
}

pub async fn bad_requests_get_error_replies(factory: &dyn TransportFactory) {
    let queue = queue(factory, "bad-input").await;
    let config = ServerConfig {
        max_body_bytes: 1024,
        ..server_config(&queue)
    };
    let server = fib_server(factory, config).await;
    let connection = connect(factory).await;
    let text = Some("text/plain");
    let bincode = Some(BINCODE_CONTENT_TYPE);
    let valid_bincode = FibWire::encode_request(BINCODE, &(1 << 40)).unwrap();
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
            "not a JSON number",
            raw(Some(JSON.content_type()), b"{\"n\": 3}"),
            "invalid-request",
        ),
        (
            "above the bound in JSON",
            raw(Some(JSON.content_type()), b"1000001"),
            "above-bound",
        ),
        (
            "unknown content type",
            raw(Some("application/xml"), b"<n>3</n>"),
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
        assert_eq!(reply_code(&reply), code, "{what}");
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
    assert_eq!(client.call::<Fib>(30).await.unwrap(), fib(30));
    assert_eq!(server.stop().await.error_replies(), count);
    crate::delete_queue(factory, &queue).await;
}

pub async fn request_without_reply_to_is_acknowledged(factory: &dyn TransportFactory) {
    let queue = queue(factory, "no-reply-to").await;
    let server = fib_server(factory, server_config(&queue)).await;
    let connection = connect(factory).await;
    connection
        .requests
        .send_request(&queue, raw(Some("text/plain"), b"30"))
        .await
        .unwrap();
    let stats = server.stats.clone();
    let without_reply_to = move || {
        stats
            .without_reply_to
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    eventually(
        LIMIT,
        "the request without reply_to is taken and acknowledged",
        || async { without_reply_to() == 1 },
    )
    .await;
    // Acknowledged, not requeued: the server stops without it coming back.
    server.stop().await;
    let after = fib_server(factory, server_config(&queue)).await;
    let client = client(factory, client_config(&queue)).await;
    assert_eq!(client.call::<Fib>(1).await.unwrap(), fib(1));
    let stats = after.stop().await;
    assert_eq!(
        stats
            .without_reply_to
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    crate::delete_queue(factory, &queue).await;
}

pub async fn text_and_bincode_clients_share_a_server(factory: &dyn TransportFactory) {
    let queue = queue(factory, "codecs").await;
    let server = fib_server(factory, server_config(&queue)).await;
    let config = ClientConfig {
        codec: fibrpc_fib::TEXT,
        ..client_config(&queue)
    };
    let text = client(factory, config).await;
    let binary = client(factory, client_config(&queue)).await;
    let (a, b) = tokio::join!(text.call::<Fib>(500), binary.call::<Fib>(500));
    assert_eq!(a.unwrap(), fib(500));
    assert_eq!(b.unwrap(), fib(500));
    // The tutorial's exact wire format: decimal text both ways, no content type, no
    // procedure name.
    let reply = raw_call(&connect(factory).await, &queue, raw(None, b"30")).await;
    assert_eq!(reply.body, b"832040");
    server.stop().await;
    crate::delete_queue(factory, &queue).await;
}

/// A server asked to stop while computing finishes what it started and gives back what it
/// had not; a second server answers the rest: no call is lost.
pub async fn shutdown_finishes_in_flight_and_loses_nothing(factory: &dyn TransportFactory) {
    const CALLS: u64 = 16;
    let check = "shutdown_finishes_in_flight_and_loses_nothing";
    if skipped(factory, check, Guarantee::Redelivery) {
        return;
    }
    let queue = queue(factory, "shutdown").await;
    let config = ServerConfig {
        prefetch: 4,
        concurrency: 2,
        ..server_config(&queue)
    };
    let first = fib_server(factory, config.clone()).await;
    let client_config = ClientConfig {
        timeout: LIMIT,
        ..client_config(&queue)
    };
    let client = client(factory, client_config).await;
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let client = client.clone();
            // Big enough to be mid-computation when the stop comes.
            let n = fibrpc_domain::DEFAULT_MAX_N - i;
            tokio::spawn(async move { (n, client.call::<Fib>(n).await) })
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

    let second = fib_server(factory, config).await;
    for call in calls {
        let (n, outcome) = call.await.unwrap();
        assert_eq!(outcome.unwrap(), fib(n), "fib({n})");
    }
    assert_eq!(
        answered_by_first + second.stop().await.answered(),
        CALLS,
        "answered twice or lost"
    );
    crate::delete_queue(factory, &queue).await;
}
