//! Requests are shared among consumers, bounded by the prefetch, settled, and handed back.

use std::collections::HashSet;

use tokio::sync::mpsc;

use super::*;

/// `consume_requests`: "MUST let several consumers of one queue ... share its requests", and
/// `RequestTransport`: a request goes "to at most one consumer of the named queue at a time".
/// While one consumer holds a request, a consumer on another connection is handed another;
/// then both take the rest at once, and every request is handed out exactly once.
pub async fn consumers_share_a_queue(factory: &dyn TransportFactory) {
    const REQUESTS: usize = 20;
    let queue = queue(factory, "shared").await;
    let sender = connect(factory).await;
    let (one, two) = (connect(factory).await, connect(factory).await);
    // Both consume before anything is sent where the broker keeps no queue.
    let mut second = match factory.lacks(Guarantee::QueuedRequests) {
        Some(_) => Some(consume(&two, &queue, 4).await),
        None => None,
    };
    let requests = (0..REQUESTS).map(|i| request(&i.to_string()));
    let mut first = send_then_consume(factory, (&sender, &one), &queue, 4, requests).await;
    let mut second = match second.take() {
        Some(stream) => stream,
        None => consume(&two, &queue, 4).await,
    };
    let held = next(&mut first).await;
    let other = next(&mut second).await;
    assert_ne!(
        held.envelope.body, other.envelope.body,
        "two consumers were handed the same request"
    );
    let mut seen = HashSet::from([held.envelope.body.clone(), other.envelope.body.clone()]);
    settle(held.ack()).await;
    settle(other.ack()).await;

    let (taken, mut bodies) = mpsc::unbounded_channel();
    let takers: Vec<_> = [first, second]
        .into_iter()
        .map(|mut stream| {
            let taken = taken.clone();
            tokio::spawn(async move {
                while let Ok(request) = stream.next_request().await {
                    let body = request.envelope.body.clone();
                    settle(request.ack()).await;
                    if taken.send(body).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    while seen.len() < REQUESTS {
        let body = within("the rest of the requests", bodies.recv())
            .await
            .expect("both consumers stopped");
        assert!(seen.insert(body.clone()), "handed out twice: {body:?}");
    }
    if let Ok(Some(body)) = tokio::time::timeout(watch(factory), bodies.recv()).await {
        panic!("handed out again after it was acknowledged: {body:?}");
    }
    for taker in takers {
        taker.abort();
    }
    crate::delete_queue(factory, &queue).await;
}

/// `RequestTransport`: a request goes "again to another if that consumer goes away without
/// acknowledging it", and `IncomingRequest::redelivered` says so.
pub async fn unsettled_requests_are_delivered_again(factory: &dyn TransportFactory) {
    let check = "unsettled_requests_are_delivered_again";
    if skipped(factory, check, Guarantee::Redelivery) {
        return;
    }
    let queue = queue(factory, "redelivery").await;
    let sender = connect(factory).await;
    send(&sender, &queue, request("once")).await;
    {
        let doomed = connect(factory).await;
        let mut stream = consume(&doomed, &queue, 1).await;
        let first = next(&mut stream).await;
        assert!(
            !first.redelivered,
            "a first delivery said it was a redelivery"
        );
        // The consumer goes away (stream, request and connection dropped) without settling.
    }
    let survivor = connect(factory).await;
    let mut stream = consume(&survivor, &queue, 1).await;
    let again = next(&mut stream).await;
    assert_eq!(again.envelope.body, b"once");
    assert!(again.redelivered, "a second delivery must say so");
    settle(again.ack()).await;
    nothing_comes_back(factory, &mut stream, "an acknowledged request came back").await;
    crate::delete_queue(factory, &queue).await;
}

/// `IncomingRequest`: "a request dropped without being settled MUST be delivered again, to
/// this consumer or another", while its stream goes on.
pub async fn dropped_requests_are_delivered_again(factory: &dyn TransportFactory) {
    let check = "dropped_requests_are_delivered_again";
    if skipped(factory, check, Guarantee::Redelivery) {
        return;
    }
    let queue = queue(factory, "dropped").await;
    let connection = connect(factory).await;
    send(&connection, &queue, request("dropped")).await;
    let mut stream = consume(&connection, &queue, 1).await;
    drop(next(&mut stream).await);
    let again = next(&mut stream).await;
    assert_eq!(again.envelope.body, b"dropped");
    assert!(again.redelivered, "a second delivery must say so");
    settle(again.ack()).await;
    nothing_comes_back(factory, &mut stream, "an acknowledged request came back").await;
    crate::delete_queue(factory, &queue).await;
}

/// `consume_requests`: "MUST hand out at most `prefetch` requests that are not yet settled".
/// With a prefetch of 2 and 5 queued, a third is handed out only once one is settled.
pub async fn prefetch_limits_unsettled_requests(factory: &dyn TransportFactory) {
    let check = "prefetch_limits_unsettled_requests";
    if skipped(factory, check, Guarantee::PrefetchLimit) {
        return;
    }
    let queue = queue(factory, "prefetch").await;
    let connection = connect(factory).await;
    for i in 0..5 {
        send(&connection, &queue, request(&i.to_string())).await;
    }
    let mut stream = consume(&connection, &queue, 2).await;
    let first = next(&mut stream).await;
    let second = next(&mut stream).await;
    nothing_more(&mut stream, "a third request past a prefetch of 2").await;
    settle(first.ack()).await;
    let third = next(&mut stream).await;
    nothing_more(&mut stream, "a fourth request past a prefetch of 2").await;
    settle(second.reject(true)).await;
    let fourth = next(&mut stream).await;
    settle(third.ack()).await;
    settle(fourth.ack()).await;
    crate::delete_queue(factory, &queue).await;
}

/// `IncomingRequest::reject`: "to the queue when `requeue`, otherwise it is discarded".
pub async fn rejection_requeues_or_discards(factory: &dyn TransportFactory) {
    let queue = queue(factory, "reject").await;
    let connection = connect(factory).await;
    let sent = [request("requeued")];
    let pair = (&connection, &connection);
    let mut stream = send_then_consume(factory, pair, &queue, 1, sent).await;
    let mut again = next(&mut stream).await;
    let check = "rejection_requeues_or_discards (requeue)";
    if !skipped(factory, check, Guarantee::Redelivery) {
        settle(again.reject(true)).await;
        again = next(&mut stream).await;
    }
    assert_eq!(again.envelope.body, b"requeued");
    let check = "rejection_requeues_or_discards (discard)";
    if skipped(factory, check, Guarantee::RejectWithoutRequeue) {
        settle(again.ack()).await;
    } else {
        settle(again.reject(false)).await;
        let why = "a request rejected without requeue came back";
        nothing_comes_back(factory, &mut stream, why).await;
    }
    crate::delete_queue(factory, &queue).await;
}

/// `RequestStream::cancel`: "after this no request is handed out, and requests the adapter
/// holds but has not handed out MUST go back to the queue. Requests already handed out can
/// still be settled."
pub async fn cancel_hands_back_what_it_holds(factory: &dyn TransportFactory) {
    hands_back(factory, true).await;
}

/// `RequestStream::cancel`: "dropping the stream without calling this MUST have the same
/// effect".
pub async fn dropped_stream_hands_back_what_it_holds(factory: &dyn TransportFactory) {
    hands_back(factory, false).await;
}

/// With 5 queued, a consumer with a prefetch of 5 takes one and then stops (`cancel` or
/// dropped); a consumer on another connection gets the other 4, each once.
async fn hands_back(factory: &dyn TransportFactory, by_cancel: bool) {
    let check = if by_cancel {
        "cancel_hands_back_what_it_holds"
    } else {
        "dropped_stream_hands_back_what_it_holds"
    };
    if skipped(factory, check, Guarantee::Redelivery) {
        return;
    }
    let queue = queue(factory, if by_cancel { "cancel" } else { "drop" }).await;
    let connection = connect(factory).await;
    for i in 0..5 {
        send(&connection, &queue, request(&i.to_string())).await;
    }
    let mut first = consume(&connection, &queue, 5).await;
    let taken = next(&mut first).await;
    let taken_body = taken.envelope.body.clone();
    if by_cancel {
        within("cancel", first.cancel())
            .await
            .expect("cancel failed");
        if let Ok(Ok(request)) = tokio::time::timeout(QUIET, first.next_request()).await {
            panic!("a request was handed out after cancel: {request:?}");
        }
    } else {
        drop(first);
    }
    settle(taken.ack()).await;

    let other = connect(factory).await;
    let mut second = consume(&other, &queue, 5).await;
    let mut rest = HashSet::new();
    for _ in 0..4 {
        let request = next(&mut second).await;
        assert!(
            rest.insert(request.envelope.body.clone()),
            "the other consumer got a duplicate"
        );
        assert_ne!(
            request.envelope.body, taken_body,
            "an acknowledged request was delivered again"
        );
        settle(request.ack()).await;
    }
    nothing_comes_back(factory, &mut second, "more requests than were sent").await;
    crate::delete_queue(factory, &queue).await;
}
