//! The OTLP exporter, reporting a collector that stops answering once (and once that it
//! answers again) instead of once per batch.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

pub(crate) struct WarnOnFailure<E> {
    inner: E,
    url: String,
    failing: AtomicBool,
}

impl<E> WarnOnFailure<E> {
    pub(crate) fn new(inner: E, url: String) -> Self {
        Self {
            inner,
            url,
            failing: AtomicBool::new(false),
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for WarnOnFailure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WarnOnFailure")
            .field("inner", &self.inner)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl<E: SpanExporter> SpanExporter for WarnOnFailure<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let spans = batch.len();
        let result = self.inner.export(batch).await;
        match &result {
            Err(error) if !self.failing.swap(true, Ordering::Relaxed) => {
                tracing::warn!(
                    url = %self.url,
                    %error,
                    spans,
                    "cannot export spans; dropping them until the collector answers"
                );
            }
            Ok(()) if self.failing.swap(false, Ordering::Relaxed) => {
                tracing::info!(url = %self.url, "exporting spans again");
            }
            _ => {}
        }
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}
