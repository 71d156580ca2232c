//! OpenTelemetry export of fibrpc's spans over OTLP/HTTP (protobuf bodies).
//!
//! [`layer`] gives a `tracing` layer that exports the spans it sees, and an [`Exporting`]
//! guard that sends what is left when dropped. The layer also tells the protocol
//! ([`fibrpc_rpc::trace::SpanExport`]) that spans are exported, so that a call's
//! `traceparent` carries its span's OpenTelemetry ids and a server's span takes the incoming
//! `traceparent` as its parent: a call's client span and its request's server span are parent
//! and child in one trace.
//!
//! Spans are batched and sent on the SDK's own thread, never on a call's path: a collector
//! that is slow or away costs a call nothing, and its spans are dropped once the batch queue
//! (2,048 spans) is full. Failing exports are reported once, as a warning, and their end once.
//!
//! Depends on the protocol (`fibrpc-rpc`) and OpenTelemetry's crates; knows no broker.

mod export;
mod ids;

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use self::export::WarnOnFailure;

/// How long one export may take before it is abandoned (its spans dropped).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why export could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    #[error("invalid OTLP endpoint {endpoint:?}: it must be an http:// URL, such as http://127.0.0.1:4318")]
    Endpoint { endpoint: String },
    #[error("cannot set up OTLP export to {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// Sends the spans still queued when dropped (a flush, then shutdown): keep it until the
/// program's work is done.
#[must_use = "dropping it stops export"]
pub struct Exporting {
    provider: SdkTracerProvider,
}

impl Drop for Exporting {
    fn drop(&mut self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "sending the last spans");
        }
    }
}

/// A layer exporting spans to the OTLP/HTTP collector at `endpoint` (its base URL, as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` gives it: spans go to `endpoint/v1/traces`), under the
/// service name `OTEL_SERVICE_NAME`, or `default_service_name` when that is unset.
///
/// The layer exports every span it sees: give it a filter (fibrpc's spans are at info, with
/// target `fibrpc_rpc`).
///
/// # Errors
/// [`OtelError::Endpoint`] for an endpoint that is not an `http://` URL (TLS is not built
/// in), [`OtelError::Exporter`] if the exporter cannot be built. A collector that does not
/// answer is no error here: see the crate's documentation.
pub fn layer<S>(
    endpoint: &str,
    default_service_name: &str,
) -> Result<(impl Layer<S>, Exporting), OtelError>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    let traces = traces_url(endpoint)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(&traces)
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|source| OtelError::Exporter {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(WarnOnFailure::new(exporter, traces))
        .with_resource(resource(default_service_name))
        .build();
    let tracer = provider.tracer("fibrpc");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .and_then(ids::span_export());
    Ok((layer, Exporting { provider }))
}

/// `endpoint/v1/traces`, the path OTLP/HTTP gives traces under a base URL.
fn traces_url(endpoint: &str) -> Result<String, OtelError> {
    let base = endpoint.trim().trim_end_matches('/');
    let host = base.strip_prefix("http://").unwrap_or_default();
    if host.is_empty() || host.starts_with('/') || base.contains(char::is_whitespace) {
        return Err(OtelError::Endpoint {
            endpoint: endpoint.to_owned(),
        });
    }
    Ok(format!("{base}/v1/traces"))
}

/// The SDK's resource (it reads `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`), named
/// `default_service_name` unless the environment names it.
fn resource(default_service_name: &str) -> Resource {
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some_and(|name| !name.is_empty());
    let builder = Resource::builder();
    if named {
        builder.build()
    } else {
        builder
            .with_service_name(default_service_name.to_owned())
            .build()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_goes_under_the_base_url() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/otlp/").unwrap(),
            "http://collector:4318/otlp/v1/traces"
        );
    }

    #[test]
    fn an_endpoint_that_is_no_http_url_is_refused() {
        for endpoint in [
            "",
            "127.0.0.1:4318",
            "https://collector:4318",
            "http://",
            "http:///x",
        ] {
            let error = traces_url(endpoint).unwrap_err();
            assert!(
                error.to_string().contains("http://127.0.0.1:4318"),
                "{error}"
            );
        }
    }
}
