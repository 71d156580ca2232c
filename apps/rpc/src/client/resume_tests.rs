//! A reply address that outlives a lost connection: its calls go on waiting, and a request
//! the broker did not take goes again under the same correlation id, whatever its procedure.

use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fibrpc_ports::{Envelope, MockReplyInbox, MockRequestTransport, ReplyInbox, TransportError};

use crate::codec::BINCODE;
use crate::testing::Echo;
use crate::{Backoff, ClientConfig, RetryPolicy, RpcClient, Serde, Wire};

const ADDRESS: &str = "fibrpc.reply.test";

/// A resumable inbox that hands out what `replies` gets; ends when it gets an `Err`, or
/// nothing for a second (the test is over: the client is dropped).
fn inbox(replies: std_mpsc::Receiver<Result<Envelope, TransportError>>) -> MockReplyInbox {
    let replies = Mutex::new(replies);
    let mut inbox = MockReplyInbox::new();
    inbox.expect_address().return_const(ADDRESS.to_owned());
    inbox.expect_resumable().return_const(true);
    inbox.expect_next_reply().returning(move || {
        let replies = replies.lock().unwrap();
        tokio::task::block_in_place(|| replies.recv_timeout(Duration::from_secs(1)))
            .unwrap_or_else(|_| Err(TransportError::disconnected("test dropped the inbox")))
    });
    inbox
}

fn reply_to(request: &Envelope) -> Envelope {
    Envelope {
        correlation_id: request.correlation_id.clone(),
        content_type: request.content_type.clone(),
        body: <Serde as Wire<Echo>>::encode_reply(BINCODE, &Ok("ok".to_owned())).unwrap(),
        ..Envelope::default()
    }
}

fn config(retry: bool) -> ClientConfig {
    let backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(5),
    };
    ClientConfig {
        queue: "q".to_owned(),
        retry: if retry {
            RetryPolicy::Idempotent { backoff }
        } else {
            RetryPolicy::Never
        },
        reconnect: backoff,
        ..ClientConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_inbox_is_resumed_and_its_call_goes_on_waiting() {
    let (first_replies, first) = std_mpsc::channel();
    let (second_replies, second) = std_mpsc::channel();
    let mut transport = MockRequestTransport::new();
    transport
        .expect_open_reply_inbox()
        .times(1)
        .return_once(move || Ok(Box::new(inbox(first)) as Box<dyn ReplyInbox>));
    transport
        .expect_resume_reply_inbox()
        .times(1)
        .withf(|address| address == ADDRESS)
        .return_once(move |_| Ok(Some(Box::new(inbox(second)) as Box<dyn ReplyInbox>)));
    // The broker took the request, then the connection went: its reply waits in the queue.
    transport
        .expect_send_request()
        .times(1)
        .returning(move |_, request| {
            first_replies
                .send(Err(TransportError::disconnected("test: connection lost")))
                .unwrap();
            second_replies.send(Ok(reply_to(&request))).unwrap();
            Ok(())
        });
    let client = RpcClient::connect(Arc::new(transport), config(true))
        .await
        .unwrap();
    let outcome = client.call::<Echo>("line".to_owned()).await;
    assert_eq!(outcome.ok().as_deref(), Some("ok"));
    let stats = client.stats();
    assert_eq!(
        (
            stats.resumed,
            stats.reconnects,
            stats.retries,
            stats.pending
        ),
        (1, 0, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_not_taken_goes_again_under_its_own_correlation_id() {
    for retry in [true, false] {
        let (replies, received) = std_mpsc::channel();
        let mut transport = MockRequestTransport::new();
        transport
            .expect_open_reply_inbox()
            .times(1)
            .return_once(move || Ok(Box::new(inbox(received)) as Box<dyn ReplyInbox>));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let sent_by_mock = sent.clone();
        let replies = Mutex::new(replies);
        transport
            .expect_send_request()
            .returning(move |_, request| {
                let mut sent = sent_by_mock.lock().unwrap();
                sent.push(request.correlation_id.clone());
                if sent.len() == 1 {
                    return Err(TransportError::disconnected("test: no confirm"));
                }
                let _ = replies.lock().unwrap().send(Ok(reply_to(&request)));
                Ok(())
            });
        let client = RpcClient::connect(Arc::new(transport), config(retry))
            .await
            .unwrap();
        // Echo is not idempotent: sent again only because the broker never took it.
        let outcome = client.call::<Echo>("line".to_owned()).await;
        let sent = sent.lock().unwrap().clone();
        if retry {
            assert_eq!(outcome.ok().as_deref(), Some("ok"));
            assert_eq!(sent.len(), 2);
            assert_eq!(sent[0], sent[1], "the same call, the same id");
            assert_eq!(client.stats().retries, 1);
        } else {
            assert!(outcome.is_err(), "{outcome:?}");
            assert_eq!(sent.len(), 1);
        }
    }
}
