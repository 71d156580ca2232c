use std::io::IsTerminal;

use clap::Args;
use fibrpc_otel::Exporting;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Where spans are exported, if anywhere.
#[derive(Args, Clone, Debug, Default)]
pub struct OtlpArgs {
    /// Export the calls' and requests' spans over OTLP/HTTP to the collector at this base
    /// URL, e.g. http://127.0.0.1:4318 (spans go to URL/v1/traces). The service is named by
    /// OTEL_SERVICE_NAME, else fibrpc-server, fibrpc-client or fibrpc-bench.
    #[arg(long, value_name = "URL", env = "OTEL_EXPORTER_OTLP_ENDPOINT")]
    pub otlp: Option<String>,
}

/// Logs go to stderr so stdout carries only results. A server says what it does
/// (`server`: info), other programs speak up only for warnings, unless `RUST_LOG` says
/// otherwise. With `otlp.otlp`, spans are exported too, under `service` unless
/// OTEL_SERVICE_NAME names another; keep what this returns until exit: dropping it sends the
/// spans still queued.
///
/// # Errors
/// One line: an OTLP URL that cannot be used.
pub fn init_logging(
    server: bool,
    otlp: &OtlpArgs,
    service: &str,
) -> Result<Option<Exporting>, String> {
    // A normal run makes lapin log nothing at WARN or ERROR, but a refused login makes it log
    // three ERROR lines (and a queue declared elsewhere with other arguments one) that the
    // adapter reports as one typed error: see docs/observability.md. So lapin is silent by
    // default; `RUST_LOG=info,lapin=debug` shows it.
    let default = match server {
        true => "info,lapin=off",
        false => "warn,lapin=off",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let log = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter);
    let (export, exporting) = match &otlp.otlp {
        Some(endpoint) => {
            let (layer, exporting) =
                fibrpc_otel::layer(endpoint, service).map_err(|error| error.to_string())?;
            // The protocol's spans whatever the log shows: they are what a trace is made of.
            let spans = Targets::new().with_target("fibrpc_rpc", tracing::Level::INFO);
            (Some(layer.with_filter(spans)), Some(exporting))
        }
        None => (None, None),
    };
    tracing_subscriber::registry().with(log).with(export).init();
    Ok(exporting)
}
