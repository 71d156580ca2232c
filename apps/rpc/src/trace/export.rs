//! The spans of a call and of a request, tied to an exporter of spans when the subscriber has
//! one ([`SpanExport`]): their ids then come from the exporter, the server's span takes the
//! caller's `traceparent` as its parent there, and they carry OpenTelemetry's messaging and
//! RPC attributes. Without one, ids are made here and the spans carry only `procedure` and
//! `trace_id`, as the log shows them.

use std::fmt::Display;

use fibrpc_ports::Envelope;
use tracing::field::{display, Empty};
use tracing::Span;

use super::TraceContext;
use crate::metrics::{CallOutcome, ServerOutcome};

/// What an exporter of spans tells the protocol: a `tracing` layer that does nothing itself.
/// Put in the subscriber beside the exporter's own layer (as `fibrpc-otel` does), it says
/// that spans are exported under the exporter's ids and how to read and set them. The
/// protocol looks for it in the subscriber of each span it makes.
#[derive(Debug, Clone, Copy)]
pub struct SpanExport {
    /// The exporter's ids of `span`, if it records it.
    pub context_of: fn(&Span) -> Option<TraceContext>,
    /// Makes `parent` the exporter's parent of `span`, before `span` is first entered.
    pub set_parent: fn(&Span, &TraceContext),
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanExport {}

impl SpanExport {
    fn installed(span: &Span) -> Option<Self> {
        span.with_subscriber(|(_, dispatch)| dispatch.downcast_ref::<Self>().copied())
            .flatten()
    }
}

/// The span named `name` with every field an exporter may be given, all but `procedure`
/// empty: the log shows only those recorded.
macro_rules! rpc_span {
    ($name:literal, $procedure:expr) => {
        tracing::info_span!(
            $name,
            procedure = $procedure,
            trace_id = Empty,
            otel.name = Empty,
            otel.kind = Empty,
            otel.status_code = Empty,
            rpc.system = Empty,
            rpc.method = Empty,
            messaging.system = Empty,
            messaging.destination.name = Empty,
            messaging.message.conversation_id = Empty,
            fibrpc.outcome = Empty,
            error.type = Empty,
        )
    };
}

/// `rpc.system`: what OpenTelemetry's RPC conventions call the protocol.
const RPC_SYSTEM: &str = "fibrpc";

/// The span a call runs in and the context it sends to the server: none at all when the
/// client's tracing is off ([`CallTrace::off`]).
pub(crate) struct CallTrace {
    pub span: Span,
    pub context: Option<TraceContext>,
    exported: bool,
}

impl CallTrace {
    /// A call of `procedure` to `queue` over `messaging_system`: in the current
    /// [`TraceContext`]'s trace, or a new one.
    pub fn start(
        procedure: &str,
        queue: &str,
        messaging_system: impl FnOnce() -> &'static str,
    ) -> Self {
        let span = rpc_span!("rpc.call", procedure);
        let Some(export) = SpanExport::installed(&span) else {
            return Self::new(span, TraceContext::for_new_call(), false);
        };
        describe(&span, "client", procedure, queue, messaging_system());
        // Inside a request's span the exporter already has the trace; a program that set a
        // `TraceContext` of its own without a span has it only there.
        if let Some(current) = TraceContext::current() {
            let joined = (export.context_of)(&Span::current())
                .is_some_and(|outer| outer.trace_id() == current.trace_id());
            if !joined {
                (export.set_parent)(&span, &current);
            }
        }
        match (export.context_of)(&span) {
            Some(context) => Self::new(span, context, true),
            None => Self::new(span, TraceContext::for_new_call(), false),
        }
    }

    /// No span and no context sent: what a client with tracing off does for each call.
    pub fn off() -> Self {
        Self {
            span: Span::none(),
            context: None,
            exported: false,
        }
    }

    fn new(span: Span, context: TraceContext, exported: bool) -> Self {
        span.record("trace_id", display(context.trace_id()));
        Self {
            span,
            context: Some(context),
            exported,
        }
    }

    /// The `traceparent` the request carries, if any.
    pub fn traceparent(&self) -> Option<String> {
        self.context.as_ref().map(TraceContext::to_traceparent)
    }

    /// The correlation id of the attempt being sent (the last one's, after retries).
    pub fn conversation(&self, correlation_id: &str) {
        if self.exported {
            conversation(&self.span, correlation_id);
        }
    }

    pub fn finish(&self, outcome: CallOutcome) {
        if self.exported {
            finish(&self.span, outcome.label(), outcome != CallOutcome::Ok);
        }
    }
}

/// The span a request is answered in and the context its handler runs in: none at all when
/// the server's tracing is off ([`RequestTrace::off`]).
pub(crate) struct RequestTrace {
    pub span: Span,
    pub context: Option<TraceContext>,
    exported: bool,
}

impl RequestTrace {
    /// A request for `procedure` taken from `queue`, continuing the `traceparent` its
    /// caller sent (a new trace without a readable one).
    pub fn start(
        procedure: &'static str,
        queue: &str,
        messaging_system: impl FnOnce() -> &'static str,
        envelope: &Envelope,
    ) -> Self {
        let span = rpc_span!("rpc.request", procedure);
        let caller = envelope
            .traceparent
            .as_deref()
            .and_then(TraceContext::parse);
        let exported = SpanExport::installed(&span).and_then(|export| {
            describe(&span, "server", procedure, queue, messaging_system());
            if let Some(correlation_id) = &envelope.correlation_id {
                conversation(&span, correlation_id);
            }
            if let Some(caller) = &caller {
                (export.set_parent)(&span, caller);
            }
            (export.context_of)(&span)
        });
        let context = exported
            .unwrap_or_else(|| caller.map_or_else(TraceContext::new_root, |caller| caller.child()));
        span.record("trace_id", display(context.trace_id()));
        Self {
            span,
            context: Some(context),
            exported: exported.is_some(),
        }
    }

    /// No span, and the handler runs outside any trace (its own calls start new ones).
    pub fn off() -> Self {
        Self {
            span: Span::none(),
            context: None,
            exported: false,
        }
    }

    pub fn finish(&self, outcome: ServerOutcome) {
        if self.exported {
            finish(&self.span, outcome.label(), outcome != ServerOutcome::Ok);
        }
    }
}

/// The attributes known when the span starts, after OpenTelemetry's RPC and messaging
/// conventions; the span is named after the procedure, as an RPC span is.
fn describe(span: &Span, kind: &str, procedure: &str, queue: &str, messaging_system: &str) {
    span.record("otel.name", procedure);
    span.record("otel.kind", kind);
    span.record("rpc.system", RPC_SYSTEM);
    span.record("rpc.method", procedure);
    span.record("messaging.system", messaging_system);
    span.record("messaging.destination.name", queue);
}

fn conversation(span: &Span, correlation_id: &str) {
    span.record("messaging.message.conversation_id", correlation_id);
}

fn finish(span: &Span, outcome: impl Display, failed: bool) {
    span.record("fibrpc.outcome", display(&outcome));
    if failed {
        span.record("error.type", display(&outcome));
        span.record("otel.status_code", "error");
    }
}
