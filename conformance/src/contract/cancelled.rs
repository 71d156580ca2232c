//! A wait for the next request, abandoned, loses nothing.

use std::time::Instant;

use futures_util::FutureExt;

use super::*;

/// `RequestStream::next_request`: "the future MUST be cancel-safe ... Dropped before it
/// completes, it MUST NOT have taken a request from the broker that it then loses". One
/// consumer (prefetch 1) takes 40 requests, sent one at a time from another connection, with
/// waits of one poll to 2 ms, each dropped when it runs out: before each request is sent, and
/// then while it is on its way. Every request arrives, once, as a first delivery (a request lost in
/// a dropped wait would block the prefetch of 1, or come back marked redelivered after an
/// acknowledgement timeout).
pub async fn cancelled_waits_lose_nothing(factory: &dyn TransportFactory) {
    const REQUESTS: usize = 40;
    let queue = queue(factory, "cancelled").await;
    let sender = connect(factory).await;
    let consumer = connect(factory).await;
    let mut stream = consume(&consumer, &queue, 1).await;
    let started = Instant::now();
    // Waits dropped once the request was on its way: the ones under test.
    let mut dropped_after_send = 0u32;
    for i in 0..REQUESTS {
        // A wait dropped after its first poll, with nothing to take.
        if let Some(outcome) = stream.next_request().now_or_never() {
            panic!("a request before any was sent: {outcome:?}");
        }
        let body = i.to_string();
        let sending = {
            let (sender, queue, body) = (sender.clone(), queue.clone(), body.clone());
            tokio::spawn(async move { send(&sender, &queue, request(&body)).await })
        };
        let mut attempt = 0u64;
        let request = loop {
            assert!(
                started.elapsed() < LIMIT,
                "request {i} did not arrive within {LIMIT:?}: a dropped `next_request` lost it"
            );
            // Every other wait is one poll: it catches a request taken from the broker and
            // then lost at the next await; the others give the request time to arrive.
            let outcome = if attempt.is_multiple_of(2) {
                stream.next_request().now_or_never()
            } else {
                let wait = Duration::from_micros(500 * (1 + attempt / 2 % 4));
                tokio::time::timeout(wait, stream.next_request()).await.ok()
            };
            attempt += 1;
            match outcome {
                Some(outcome) => break outcome.expect("the stream failed"),
                None => dropped_after_send += 1,
            }
        };
        assert_eq!(
            request.envelope.body,
            body.as_bytes(),
            "out of order or twice"
        );
        assert!(
            !request.redelivered,
            "request {i} came back redelivered: a dropped `next_request` lost it"
        );
        settle(request.ack()).await;
        within("the sender", sending)
            .await
            .expect("the sender failed");
    }
    assert!(
        dropped_after_send > 0,
        "no wait was dropped while a request was on its way: nothing was checked"
    );
    nothing_comes_back(factory, &mut stream, "more requests than were sent").await;
    crate::delete_queue(factory, &queue).await;
}
