//! `--otlp URL`: the layer that exports the command's spans (`fibrpc-otel`), when asked for.

use fibrpc_otel::Exporting;
use tracing::Subscriber;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::args::Command;

/// The export layer for `command`, and what flushes it at exit; `None` without `--otlp` (or
/// `OTEL_EXPORTER_OTLP_ENDPOINT`).
pub fn layer<S>(command: &Command) -> Result<Option<(impl Layer<S>, Exporting)>, String>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let (endpoint, service) = match command {
        Command::Serve(args) => (&args.otlp.otlp, "fibrpc-server"),
        Command::Call(args) => (&args.otlp.otlp, "fibrpc-client"),
        Command::Bench(args) => (&args.otlp.otlp, "fibrpc-bench"),
        Command::Demo(_) | Command::BareEcho(_) => return Ok(None),
    };
    let Some(endpoint) = endpoint else {
        return Ok(None);
    };
    let (layer, exporting) =
        fibrpc_otel::layer(endpoint, service).map_err(|error| error.to_string())?;
    // The protocol's spans whatever the log shows: they are what a trace is made of.
    let spans = Targets::new().with_target("fibrpc_rpc", tracing::Level::INFO);
    Ok(Some((layer.with_filter(spans), exporting)))
}
