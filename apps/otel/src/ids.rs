//! The protocol's trace context and OpenTelemetry's span context, one into the other: what
//! [`SpanExport`] needs to read a span's ids and to give it a parent from another process.

use fibrpc_rpc::trace::SpanExport;
use fibrpc_rpc::TraceContext;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState,
};
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

pub(crate) fn span_export() -> SpanExport {
    SpanExport {
        context_of,
        set_parent,
    }
}

fn context_of(span: &Span) -> Option<TraceContext> {
    let context = span.context();
    let span_context = context.span().span_context().clone();
    TraceContext::from_ids(
        u128::from_be_bytes(span_context.trace_id().to_bytes()),
        u64::from_be_bytes(span_context.span_id().to_bytes()),
        span_context.is_sampled(),
    )
}

fn set_parent(span: &Span, parent: &TraceContext) {
    let flags = if parent.is_sampled() {
        TraceFlags::SAMPLED
    } else {
        TraceFlags::default()
    };
    let remote = SpanContext::new(
        TraceId::from(parent.trace_id().to_u128()),
        SpanId::from(parent.span_id()),
        flags,
        true,
        TraceState::default(),
    );
    // Fails only for a span already entered or one the layer does not see: it then keeps
    // the parent it has.
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}
