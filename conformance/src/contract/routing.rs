//! Replies reach the inbox they are meant for, and every field and byte arrives as sent.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use fibrpc_ports::{Envelope, ReplyError};

use super::*;

/// `send_request` ... reply inboxes: "the address MUST be this client's alone" and "each call
/// opens a new address". 4 inboxes (two on each of two connections) with 50 requests each in
/// flight, answered by a bare echo consumer that replies to each `reply_to` with the request's
/// correlation id: every inbox gets exactly its own replies, none twice.
pub async fn replies_reach_their_own_inbox(factory: &dyn TransportFactory) {
    const INBOXES: usize = 4;
    const EACH: usize = 50;
    let queue = queue(factory, "routing").await;
    let server = connect(factory).await;
    let mut requests = consume(&server, &queue, 64).await;
    let echo = tokio::spawn(async move {
        for _ in 0..INBOXES * EACH {
            let request = next(&mut requests).await;
            let echo = Envelope {
                correlation_id: request.envelope.correlation_id.clone(),
                body: request.envelope.body.clone(),
                ..Envelope::default()
            };
            let reply_to = request
                .envelope
                .reply_to
                .clone()
                .expect("a request lost its reply_to");
            answer(request, &reply_to, echo).await;
        }
    });
    let connections = [connect(factory).await, connect(factory).await];
    let mut inboxes = Vec::new();
    for c in 0..INBOXES {
        inboxes.push(open_inbox(&connections[c % 2]).await);
    }
    let addresses: HashSet<&str> = inboxes.iter().map(|inbox| inbox.address()).collect();
    assert_eq!(addresses.len(), INBOXES, "two inboxes share an address");

    let mut clients = Vec::new();
    for (c, mut inbox) in inboxes.into_iter().enumerate() {
        let connection = connections[c % 2].clone();
        let queue = queue.clone();
        clients.push(tokio::spawn(async move {
            let mut sent = HashSet::new();
            for i in 0..EACH {
                let id = format!("{c}-{i}");
                let envelope = Envelope {
                    correlation_id: Some(id.clone()),
                    reply_to: Some(inbox.address().to_owned()),
                    body: id.clone().into_bytes(),
                    ..Envelope::default()
                };
                send(&connection, &queue, envelope).await;
                sent.insert(id);
            }
            for _ in 0..EACH {
                let reply = next_reply(&mut inbox).await;
                let id = reply
                    .correlation_id
                    .expect("a reply lost its correlation id");
                assert_eq!(
                    reply.body,
                    id.as_bytes(),
                    "body and correlation id disagree"
                );
                assert!(
                    sent.remove(&id),
                    "inbox {c} got a reply that is not its own, or one twice: {id}"
                );
            }
            assert!(sent.is_empty());
        }));
    }
    for client in clients {
        within("a client's replies", client)
            .await
            .expect("a client failed");
    }
    within("the echo consumer", echo)
        .await
        .expect("the echo consumer failed");
    crate::delete_queue(factory, &queue).await;
}

/// `open_reply_inbox`: "the adapter MUST be receiving on the address when this returns, so
/// that a reply sent right after is not lost". The reply comes from another connection,
/// right after the inbox opened, 20 times over.
pub async fn inbox_receives_as_soon_as_opened(factory: &dyn TransportFactory) {
    let client = connect(factory).await;
    let server = connect(factory).await;
    let mut replier = Replier::open(factory, &server).await;
    for i in 0..20 {
        let mut inbox = open_inbox(&client).await;
        replier
            .reply(inbox.address(), request(&i.to_string()))
            .await;
        let got = next_reply(&mut inbox).await;
        assert_eq!(got.body, i.to_string().as_bytes());
    }
    replier.close(factory).await;
}

/// "carry every Envelope field except deadline through unchanged": correlation id, reply_to,
/// content type, procedure, trace context (`traceparent`), an error reply's mark (`error`)
/// and body arrive as sent, on requests and on replies; the deadline arrives as (about) the
/// same instant; absent fields stay absent. Replies go through a request's own handle, as a
/// server sends them.
pub async fn fields_are_carried_through(factory: &dyn TransportFactory) {
    let queue = queue(factory, "fields").await;
    let connection = connect(factory).await;
    let mut inbox = open_inbox(&connection).await;
    let mut stream = consume(&connection, &queue, 4).await;
    let full = Envelope {
        correlation_id: Some("a-correlation-id".to_owned()),
        reply_to: Some(inbox.address().to_owned()),
        content_type: Some("application/x-bincode".to_owned()),
        procedure: Some("text.count".to_owned()),
        deadline: Some(Instant::now() + Duration::from_secs(30)),
        body: vec![0, 1, 2, 255],
        traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".to_owned()),
        error: None,
        reads_batches: true,
    };
    send(&connection, &queue, full.clone()).await;
    let got = next(&mut stream).await;
    assert_eq!(got.envelope.correlation_id, full.correlation_id);
    assert_eq!(got.envelope.reply_to, full.reply_to);
    assert_eq!(got.envelope.content_type, full.content_type);
    assert_eq!(got.envelope.procedure, full.procedure);
    assert_eq!(got.envelope.traceparent, full.traceparent);
    assert!(
        got.envelope.reads_batches,
        "the coalesced-replies flag was lost"
    );
    assert_eq!(got.envelope.body, full.body);
    let deadline = got.envelope.deadline.expect("the deadline was lost");
    let sent = full.deadline.unwrap_or_else(Instant::now);
    assert!(
        deadline > sent - Duration::from_secs(5) && deadline < sent + Duration::from_secs(1),
        "the deadline moved by more than the clocks can explain"
    );
    settle(got.ack()).await;

    send(&connection, &queue, Envelope::with_body("bare")).await;
    let bare = next(&mut stream).await;
    assert_eq!(
        bare.envelope,
        Envelope::with_body("bare"),
        "absent fields must stay absent"
    );
    settle(bare.ack()).await;

    let back = Envelope {
        correlation_id: Some("back".to_owned()),
        content_type: Some("text/plain".to_owned()),
        body: b"832040".to_vec(),
        ..Envelope::default()
    };
    let mut replier = Replier::open(factory, &connection).await;
    replier.reply(inbox.address(), back.clone()).await;
    assert_eq!(next_reply(&mut inbox).await, back);
    let marked = Envelope {
        correlation_id: Some("marked".to_owned()),
        content_type: Some("application/json".to_owned()),
        body: br#"{"kind":"unknown-procedure","message":"no procedure named \"x\""}"#.to_vec(),
        error: Some(ReplyError {
            kind: "unknown-procedure".to_owned(),
            message: "no procedure named \"x\" on this server".to_owned(),
        }),
        ..Envelope::default()
    };
    replier.reply(inbox.address(), marked.clone()).await;
    assert_eq!(
        next_reply(&mut inbox).await,
        marked,
        "the error mark was lost"
    );
    replier
        .reply(inbox.address(), Envelope::with_body("bare"))
        .await;
    assert_eq!(next_reply(&mut inbox).await, Envelope::with_body("bare"));
    replier.close(factory).await;
    crate::delete_queue(factory, &queue).await;
}

/// Bodies are opaque bytes: a 1 MiB request and a 1 MiB reply arrive byte-exact.
pub async fn large_bodies_arrive_byte_exact(factory: &dyn TransportFactory) {
    let queue = queue(factory, "large").await;
    let connection = connect(factory).await;
    let mut inbox = open_inbox(&connection).await;
    let mut stream = consume(&connection, &queue, 1).await;
    let body: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    send(&connection, &queue, Envelope::with_body(body.clone())).await;
    let got = next(&mut stream).await;
    assert!(
        got.envelope.body == body,
        "the request body changed on the way"
    );
    let reply_to = inbox.address().to_owned();
    answer(got, &reply_to, Envelope::with_body(body.clone())).await;
    let got = next_reply(&mut inbox).await;
    assert!(got.body == body, "the reply body changed on the way");
    crate::delete_queue(factory, &queue).await;
}
