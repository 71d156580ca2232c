//! Trace context across the broker, without OpenTelemetry: a call carries a W3C `traceparent`
//! (in [`Envelope::traceparent`](fibrpc_ports::Envelope::traceparent)), the server continues
//! its trace, and both log their work in a span with a `trace_id` field, so that one call's
//! lines on either side share it.
//!
//! The current context lives in a task-local: the server runs each handler inside the
//! request's context, so that calls a handler makes join the trace; a program sets its own
//! with [`TraceContext::scope`]. A call made outside any context starts a new trace. A
//! `traceparent` that cannot be parsed (or none at all, as from the RabbitMQ tutorial's
//! clients) starts a new trace too: never an error.
//!
//! An exporter of spans (OpenTelemetry's, in `fibrpc-otel`) gives spans ids of its own; with
//! one in the subscriber ([`SpanExport`]), the ids that travel are the exporter's.

mod export;

use std::fmt;
use std::future::Future;

pub use self::export::SpanExport;
pub(crate) use self::export::{CallTrace, RequestTrace};

tokio::task_local! {
    static CURRENT: TraceContext;
}

/// Where a piece of work sits in a trace: the trace's id, this span's id, and the W3C flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: u128,
    span_id: u64,
    flags: u8,
}

/// A trace id, shown as W3C writes it: 32 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceId(u128);

impl TraceId {
    pub fn to_u128(self) -> u128 {
        self.0
    }
}

impl fmt::Display for TraceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// The `sampled` flag: we record every call, so we say so to whoever comes next.
const SAMPLED: u8 = 0x01;

impl TraceContext {
    /// The first span of a new trace.
    pub fn new_root() -> Self {
        Self {
            trace_id: nonzero_random().as_u128(),
            span_id: span_id(),
            flags: SAMPLED,
        }
    }

    /// A context from an exporter's ids; `None` if either is zero (W3C's invalid ids).
    pub fn from_ids(trace_id: u128, span_id: u64, sampled: bool) -> Option<Self> {
        let flags = if sampled { SAMPLED } else { 0 };
        (trace_id != 0 && span_id != 0).then_some(Self {
            trace_id,
            span_id,
            flags,
        })
    }

    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    pub fn is_sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    /// A new span in the same trace, below this one.
    pub fn child(&self) -> Self {
        Self {
            span_id: span_id(),
            ..*self
        }
    }

    /// The context in which the current task runs, if it was given one.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(|context| *context).ok()
    }

    /// A child of the current context, or a new trace outside any: what a call sends.
    pub fn for_new_call() -> Self {
        Self::current().map_or_else(Self::new_root, |parent| parent.child())
    }

    /// The context a request's handling runs in: a child of the caller's `traceparent`, or a
    /// new trace when it is absent or malformed.
    pub fn continuing(traceparent: Option<&str>) -> Self {
        traceparent
            .and_then(Self::parse)
            .map_or_else(Self::new_root, |parent| parent.child())
    }

    /// Runs `future` with this context as the current one.
    pub async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    pub fn trace_id(&self) -> TraceId {
        TraceId(self.trace_id)
    }

    /// This context as a W3C `traceparent` value (version 00).
    pub fn to_traceparent(&self) -> String {
        format!(
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.flags
        )
    }

    /// Reads a W3C `traceparent`: `version-traceid-parentid-flags` in lowercase hex. Version
    /// `ff` and all-zero ids are invalid; a later version may append fields after a `-`,
    /// which are ignored, as the standard asks.
    pub fn parse(traceparent: &str) -> Option<Self> {
        let text = traceparent.trim();
        let (head, rest) = (text.get(..55)?, &text[55..]);
        let version = u8::from_str_radix(hex(head.get(..2)?, 2)?, 16).ok()?;
        let fits = match version {
            0 => rest.is_empty(),
            0xff => false,
            _ => rest.is_empty() || rest.starts_with('-'),
        };
        let dashes = [2, 35, 52].iter().all(|&at| head.as_bytes()[at] == b'-');
        if !fits || !dashes {
            return None;
        }
        let trace_id = u128::from_str_radix(hex(&head[3..35], 32)?, 16).ok()?;
        let span_id = u64::from_str_radix(hex(&head[36..52], 16)?, 16).ok()?;
        let flags = u8::from_str_radix(hex(&head[53..55], 2)?, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(Self {
            trace_id,
            span_id,
            flags,
        })
    }
}

/// `text` if it is exactly `len` lowercase hex digits (`from_str_radix` alone would take a
/// sign or capitals).
fn hex(text: &str, len: usize) -> Option<&str> {
    let ok = text.len() == len
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    ok.then_some(text)
}

fn nonzero_random() -> uuid::Uuid {
    // A v4 uuid has 122 random bits and fixed version bits: never zero.
    uuid::Uuid::new_v4()
}

fn span_id() -> u64 {
    // The low half of a v4 uuid: 62 random bits and the variant bits, so never zero.
    nonzero_random().as_u64_pair().1
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_traceparent_round_trips() {
        let context = TraceContext::parse(SAMPLE).unwrap();
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.to_traceparent(), SAMPLE);
        let fresh = TraceContext::new_root();
        assert_eq!(TraceContext::parse(&fresh.to_traceparent()), Some(fresh));
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        let bad = [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-+bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01é",
        ];
        for text in bad {
            assert_eq!(TraceContext::parse(text), None, "{text:?}");
        }
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-comes";
        assert!(TraceContext::parse(later).is_some());
    }

    #[test]
    fn a_request_continues_its_callers_trace_or_starts_one() {
        let parent = TraceContext::parse(SAMPLE).unwrap();
        let continued = TraceContext::continuing(Some(SAMPLE));
        assert_eq!(continued.trace_id(), parent.trace_id());
        assert_ne!(continued.span_id, parent.span_id);
        assert_ne!(
            TraceContext::continuing(Some("00-zz")).trace_id(),
            parent.trace_id()
        );
        assert_ne!(
            TraceContext::continuing(None).trace_id(),
            TraceContext::continuing(None).trace_id()
        );
    }

    #[tokio::test]
    async fn calls_inside_a_scope_join_its_trace() {
        assert_eq!(TraceContext::current(), None);
        let parent = TraceContext::new_root();
        let call = parent.scope(async { TraceContext::for_new_call() }).await;
        assert_eq!(call.trace_id(), parent.trace_id());
        assert_ne!(call, parent);
        assert_ne!(TraceContext::for_new_call().trace_id(), parent.trace_id());
    }
}
