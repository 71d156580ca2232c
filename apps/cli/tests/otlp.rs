//! `--otlp`: `fibrpc serve` and `fibrpc call`, as processes, export their spans to an OTLP/HTTP
//! receiver (a small one here, decoding with the published OTLP definitions); one call is one
//! trace across the broker, the server's span a child of the client's.

mod support;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use support::otlp::{Exported, Receiver};
use support::*;

#[test]
fn a_call_over_rabbitmq_and_its_request_are_one_trace() {
    if !rabbitmq_available() {
        return;
    }
    one_call_is_one_trace("amqp", "rabbitmq");
}

#[test]
fn a_call_over_nats_and_its_request_are_one_trace() {
    if !nats_available() {
        return;
    }
    one_call_is_one_trace("nats", "nats");
}

/// A call answered and a call refused (n above the server's `--max-n`): each a client span
/// and a server span, exported by processes that then exit (flushing what they queued).
fn one_call_is_one_trace(transport: &str, messaging_system: &str) {
    let receiver = Receiver::start();
    let queue = unique_queue(&format!("otlp-{transport}"));
    let export = ["--transport", transport, "--otlp", &receiver.url];
    let mut server = serve(&queue, &[&export[..], &["--max-n", "100"]].concat());
    let call = |n: &str| {
        let mut call = fibrpc();
        call.args(["call", "--queue", &queue, n]).args(export);
        run(call)
    };
    let answered = call("30");
    assert!(answered.status.success(), "{}", stderr(&answered));
    assert_eq!(stdout(&answered), "832040\n");
    let refused = call("101");
    assert!(!refused.status.success());
    server.signal("TERM");
    assert!(server.wait().success());

    let spans = receiver.wait_for(|spans| spans.len() >= 4);
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let mut conversations: Vec<_> = spans
        .iter()
        .filter(|span| span.span.kind == SpanKind::Client as i32)
        .map(|client| (client, server_of(client, &spans)))
        .collect();
    conversations.sort_by_key(|(client, _)| client.attribute("fibrpc.outcome") != Some("ok"));
    let [(ok_client, ok_server), (error_client, error_server)] = &conversations[..] else {
        panic!("two calls, each answered by a server span: {spans:#?}");
    };
    for (client, server) in [(ok_client, ok_server), (error_client, error_server)] {
        assert_eq!(client.service, "fibrpc-client");
        assert_eq!(server.service, "fibrpc-server");
        assert_eq!(client.span.trace_id.len(), 16);
        assert_eq!(server.span.trace_id, client.span.trace_id);
        assert_eq!(server.span.parent_span_id, client.span.span_id);
        assert!(client.span.parent_span_id.is_empty(), "{client:#?}");
        assert_eq!(server.span.kind, SpanKind::Server as i32);
        for span in [client, server] {
            assert_eq!(span.span.name, "fib");
            assert_eq!(span.attribute("rpc.system"), Some("fibrpc"));
            assert_eq!(span.attribute("rpc.method"), Some("fib"));
            assert_eq!(span.attribute("messaging.system"), Some(messaging_system));
            assert_eq!(
                span.attribute("messaging.destination.name"),
                Some(queue.as_str())
            );
        }
    }
    for span in [ok_client, ok_server] {
        assert_eq!(span.attribute("fibrpc.outcome"), Some("ok"));
        assert_eq!(span.attribute("error.type"), None);
        assert_ne!(status(span), StatusCode::Error as i32);
    }
    for (span, outcome) in [(error_client, "remote_error"), (error_server, "error")] {
        assert_eq!(span.attribute("fibrpc.outcome"), Some(outcome));
        assert_eq!(span.attribute("error.type"), Some(outcome));
        assert_eq!(status(span), StatusCode::Error as i32);
    }
}

/// The server span of the request `client` sent: the one with its correlation id.
fn server_of<'a>(client: &Exported, spans: &'a [Exported]) -> &'a Exported {
    let key = "messaging.message.conversation_id";
    let conversation = client.attribute(key).expect("a correlation id");
    assert_eq!(conversation.len(), 36, "a uuid: {conversation}");
    spans
        .iter()
        .find(|span| {
            span.span.kind == SpanKind::Server as i32 && span.attribute(key) == Some(conversation)
        })
        .unwrap_or_else(|| panic!("no server span of {conversation}: {spans:#?}"))
}

fn status(span: &Exported) -> i32 {
    span.span.status.as_ref().map_or(0, |status| status.code)
}

/// Nothing listens on port 1: every export fails at once. The calls do not (their answers
/// are printed), and the failing exports (one every millisecond, over 100 calls) are
/// reported once.
#[test]
fn a_collector_that_does_not_answer_is_one_warning_and_fails_no_call() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("otlp-unreachable");
    let _server = serve(&queue, &[]);
    let numbers: Vec<String> = (1..=100).map(|n| n.to_string()).collect();
    let mut call = fibrpc();
    call.args(["call", "--queue", &queue, "--otlp", "http://127.0.0.1:1"])
        .args(&numbers)
        .env("OTEL_BSP_SCHEDULE_DELAY", "1");
    let output = run(call);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 100);
    assert_eq!(
        stdout(&output).lines().last(),
        Some("354224848179261915075")
    );
    let log = stderr(&output);
    assert_eq!(log.lines().count(), 1, "{log}");
    assert!(
        log.contains("WARN") && log.contains("cannot export spans"),
        "{log}"
    );
    assert!(log.contains("http://127.0.0.1:1/v1/traces"), "{log}");
}

#[test]
fn an_endpoint_that_is_no_http_url_is_refused_in_one_line() {
    let mut call = fibrpc();
    call.args(["call", "--otlp", "127.0.0.1:4318", "30"]);
    let output = run(call);
    assert!(!output.status.success());
    assert_eq!(
        stderr(&output),
        "fibrpc: invalid OTLP endpoint \"127.0.0.1:4318\": it must be an http:// URL, such as http://127.0.0.1:4318\n"
    );
}
