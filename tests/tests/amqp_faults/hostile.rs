//! Every kind of hostile request, sent raw to a fib server.

use std::fmt::Write as _;
use std::time::Duration;

use fibrpc_conformance::{eventually, TransportFactory};
use fibrpc_domain::DomainError;
use fibrpc_fib::{Fib, FibWire};
use fibrpc_ports::Envelope;
use fibrpc_rpc::codec::{Codec, BINCODE_CONTENT_TYPE};
use fibrpc_rpc::{CallError, Wire};
use fibrpc_test_support::{rabbitmq, unique};
use fibrpc_tests::AmqpFactory;

/// Every kind of hostile request, sent raw: each gets its typed error reply where a reply is
/// possible, is acknowledged (the queue ends empty), and the server keeps serving.
pub async fn hostile_input(factory: &AmqpFactory, queue: &str) -> String {
    let connection = factory.connect().await.unwrap();
    let mut inbox = connection.requests.open_reply_inbox().await.unwrap();
    let reply_to = Some(inbox.address().to_owned());
    let raw = |content_type: Option<&str>, body: Vec<u8>| Envelope {
        correlation_id: Some(unique("hostile")),
        reply_to: reply_to.clone(),
        content_type: content_type.map(str::to_owned),
        body,
        ..Envelope::default()
    };
    let text = Some("text/plain");
    let bincode = Some(BINCODE_CONTENT_TYPE);
    let good = FibWire::encode_request(fibrpc_rpc::codec::BINCODE, &(1 << 40)).unwrap();
    let answered: Vec<(&str, Envelope, &str)> = vec![
        ("empty body", raw(text, vec![]), "invalid-request"),
        (
            "non-numeric text",
            raw(text, b"thirty".to_vec()),
            "invalid-request",
        ),
        (
            "negative number",
            raw(None, b"-30".to_vec()),
            "invalid-request",
        ),
        (
            "5,000 digits",
            raw(text, vec![b'9'; 5000]),
            "invalid-request",
        ),
        (
            "n above the bound",
            raw(text, b"1000001".to_vec()),
            "above-bound",
        ),
        (
            "invalid UTF-8",
            raw(text, vec![0xc3, 0x28, b'1']),
            "invalid-request",
        ),
        (
            "truncated bincode",
            raw(bincode, good[..good.len() - 1].to_vec()),
            "invalid-request",
        ),
        (
            "garbage bincode",
            raw(bincode, vec![0xfe; 40]),
            "invalid-request",
        ),
        (
            "unknown content type",
            raw(Some("application/xml"), b"<n>3</n>".to_vec()),
            "unsupported-content-type",
        ),
        (
            "16 MiB body",
            raw(text, vec![b'1'; 16 << 20]),
            "body-too-large",
        ),
        (
            "missing correlation_id",
            Envelope {
                correlation_id: None,
                ..raw(text, b"10".to_vec())
            },
            "answered",
        ),
    ];
    let mut report = String::from("| hostile input | reply |\n|---|---|\n");
    for (what, request, expected) in answered {
        connection
            .requests
            .send_request(queue, request)
            .await
            .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(20), inbox.next_reply())
            .await
            .unwrap_or_else(|_| panic!("{what}: no reply"))
            .unwrap();
        let content_type = reply.content_type.as_deref().unwrap();
        let codec = Codec::find(<FibWire as Wire<Fib>>::CODECS, content_type).unwrap();
        let outcome = FibWire::decode_reply(codec, &reply.body, reply.error.as_ref());
        let (got, shown) = match &outcome {
            Ok(value) => ("answered", format!("fib = {value}")),
            Err(CallError::Remote(error @ DomainError::AboveBound { .. })) => {
                ("above-bound", format!("error reply: {error}"))
            }
            Err(CallError::Fault(fault)) => (fault.code(), format!("error reply: {fault}")),
            Err(other) => panic!("{what}: not a reply: {other:?}"),
        };
        assert_eq!(got, expected, "{what}: {outcome:?}");
        let _ = writeln!(report, "| {what} | {shown} |");
    }
    // No reply possible: acknowledged and logged, never requeued.
    let no_reply_to = Envelope {
        reply_to: None,
        ..raw(text, b"10".to_vec())
    };
    connection
        .requests
        .send_request(queue, no_reply_to)
        .await
        .unwrap();
    let gone_reply_to = Envelope {
        reply_to: Some("no-such-reply-queue".to_owned()),
        ..raw(text, b"10".to_vec())
    };
    connection
        .requests
        .send_request(queue, gone_reply_to)
        .await
        .unwrap();
    // Acknowledged: neither ready (a passive declare's count) nor delivered and unacknowledged
    // (which only the broker's listing shows).
    eventually(
        Duration::from_secs(20),
        "hostile requests are all acknowledged",
        || async {
            rabbitmq::queue_state(queue)
                .await
                .expect("cannot list the queues")
                .is_some_and(|state| state.ready == 0 && state.unacked == 0)
        },
    )
    .await;
    report.push_str("| missing reply_to | none possible: acknowledged, logged |\n");
    report.push_str("| reply_to naming no queue | reply unroutable: acknowledged, logged |\n");
    report
}
