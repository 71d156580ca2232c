use std::time::{Duration, Instant};

/// A message as the RPC protocol sees it: routing metadata and an opaque body.
///
/// Every field but the body is optional because peers outside fibrpc (the RabbitMQ tutorial's
/// clients and servers, say) may leave any of them out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Envelope {
    /// Ties a reply to its request; chosen fresh by the caller for every call.
    pub correlation_id: Option<String>,
    /// Where the reply to a request goes: the caller's reply address.
    pub reply_to: Option<String>,
    /// How the body is encoded (a MIME type such as `text/plain`).
    pub content_type: Option<String>,
    /// The procedure a request calls. None means whatever the server routes unnamed requests
    /// to (fib, for the RabbitMQ tutorial's clients, which name none).
    pub procedure: Option<String>,
    /// When the caller stops waiting, on this process's clock. A transport that can expire
    /// messages MUST NOT deliver a request after its deadline; one that cannot passes it on to
    /// the consumer.
    ///
    /// An `Instant` means nothing to another machine. An adapter whose messages cross a
    /// network MUST carry the deadline as the time left when the message is sent (a
    /// time-to-live, as AMQP's `expiration` is), written with
    /// [`deadline_to_wire_millis`](Self::deadline_to_wire_millis) and read back with
    /// [`deadline_from_wire_millis`](Self::deadline_from_wire_millis): no clock of two
    /// machines is compared, only how long the message waited on the way, where the broker
    /// can tell.
    ///
    /// Replies carry none (the caller's own timer ends its wait): an adapter MUST NOT require
    /// one, and MUST NOT drop a reply for lacking one.
    pub deadline: Option<Instant>,
    pub body: Vec<u8>,
    /// The W3C trace context of the call (a `traceparent` value: `00-<trace id>-<parent
    /// id>-<flags>`), so that the server's work joins the caller's trace. An adapter MUST carry
    /// it unchanged (an AMQP header, a NATS header); the protocol, not the adapter, reads it,
    /// and ignores one it cannot parse.
    pub traceparent: Option<String>,
    /// On a reply that carries an error or a fault, what it is, so that a client in any
    /// language tells it apart without reading the body; None on requests and on successful
    /// replies. An adapter MUST carry it unchanged (see docs/wire.md for each broker's form).
    pub error: Option<ReplyError>,
    /// On a request: the caller reads coalesced replies (several replies in one message, the
    /// batch format of docs/wire.md), so a server MAY send this request's reply inside one.
    /// False on replies, and on requests from clients that never said so (the RabbitMQ
    /// tutorial's): those MUST only ever get a reply of their own. An adapter MUST carry it
    /// (see docs/wire.md for each broker's form).
    pub reads_batches: bool,
}

/// The mark of an error reply ([`Envelope::error`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyError {
    /// `error` for the procedure's own error; else the fault's kebab-case name
    /// (`unknown-procedure`, `invalid-request`, `unsupported-content-type`, `body-too-large`,
    /// `internal`).
    pub kind: String,
    /// One line of human text.
    pub message: String,
}

impl Envelope {
    pub fn with_body(body: impl Into<Vec<u8>>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    /// True when the deadline is set and has passed at `now`.
    pub fn is_expired_at(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|deadline| deadline <= now)
    }

    /// The time left until the deadline, now (zero once it has passed); None without one.
    pub fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|deadline| deadline.saturating_duration_since(Instant::now()))
    }

    /// The deadline as it goes on the wire: the whole milliseconds left now, rounded up (a
    /// deadline not yet reached is not made a past one) and at least 1 (AMQP reads an
    /// `expiration` of 0 as "deliver now or never": a request already late gets 1 ms, and
    /// the consumer finds it expired). None without a deadline.
    pub fn deadline_to_wire_millis(&self) -> Option<u64> {
        self.time_left().map(|left| {
            let millis = left.as_micros().div_ceil(1000).max(1);
            u64::try_from(millis).unwrap_or(u64::MAX)
        })
    }

    /// The deadline of a message that arrived carrying `millis` (see
    /// [`deadline_to_wire_millis`](Self::deadline_to_wire_millis)) after it `waited` on the
    /// way: the time it spent queued where the broker tells it, else zero (the deadline is
    /// then late by the time queued, never early by a clock's error).
    ///
    /// A message that waited longer than its time to live gets a deadline that far in the past
    /// (where the clock allows), so that it reads as expired at any `now` taken before.
    pub fn deadline_from_wire_millis(millis: u64, waited: Duration) -> Instant {
        let ttl = Duration::from_millis(millis);
        let now = Instant::now();
        match ttl.checked_sub(waited) {
            // A time-to-live too large for this clock is no deadline worth keeping exactly.
            Some(left) => now
                .checked_add(left)
                .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365)),
            None => now.checked_sub(waited - ttl).unwrap_or(now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn due_in(left: Duration) -> Envelope {
        Envelope {
            deadline: Some(Instant::now() + left),
            ..Envelope::default()
        }
    }

    #[test]
    fn the_wire_form_is_the_time_left_rounded_up() {
        let millis = due_in(Duration::from_secs(5))
            .deadline_to_wire_millis()
            .unwrap();
        assert!((4_900..=5_000).contains(&millis), "{millis}");
        assert_eq!(Envelope::default().deadline_to_wire_millis(), None);
        // Half a millisecond left is 1 ms, not 0; a past deadline too.
        assert_eq!(
            due_in(Duration::from_micros(500)).deadline_to_wire_millis(),
            Some(1)
        );
        let late = Envelope {
            deadline: Some(Instant::now() - Duration::from_secs(1)),
            ..Envelope::default()
        };
        assert_eq!(late.deadline_to_wire_millis(), Some(1));
        assert_eq!(late.time_left(), Some(Duration::ZERO));
    }

    #[test]
    fn the_deadline_read_back_loses_the_time_waited() {
        let before = Instant::now();
        let deadline = Envelope::deadline_from_wire_millis(10_000, Duration::from_secs(4));
        let left = deadline - before;
        assert!(left >= Duration::from_secs(6) && left < Duration::from_secs(7));
        let before = Instant::now();
        let expired = Envelope::deadline_from_wire_millis(10_000, Duration::from_secs(11));
        assert!(expired < before, "overdue by a second, not just now");
        // Absurd values do not panic.
        let _ = Envelope::deadline_from_wire_millis(u64::MAX, Duration::ZERO);
    }
}
