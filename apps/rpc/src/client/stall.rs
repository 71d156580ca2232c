//! What a client saw of a call that timed out: asked of the transport only then, and once
//! for all the calls that time out together, so that a flood of timeouts is not a flood of
//! questions to the broker.

use std::time::Duration;

use fibrpc_ports::{RequestTransport, Stall};
use tokio::sync::Mutex;
use tokio::time::Instant;

/// How long an answer stands for the calls that time out after it.
const FRESH: Duration = Duration::from_secs(1);
/// How long a timed-out call waits past its deadline for the transport's answer at most.
const PATIENCE: Duration = Duration::from_millis(250);

#[derive(Default)]
pub(crate) struct StallProbe {
    last: Mutex<Option<(Instant, Option<Stall>)>>,
}

impl StallProbe {
    pub(crate) async fn probe(
        &self,
        transport: &dyn RequestTransport,
        queue: &str,
    ) -> Option<Stall> {
        let mut last = self.last.lock().await;
        if let Some((at, seen)) = &*last {
            if at.elapsed() < FRESH {
                return seen.clone();
            }
        }
        let seen = tokio::time::timeout(PATIENCE, transport.stall(queue))
            .await
            .ok()
            .flatten();
        *last = Some((Instant::now(), seen.clone()));
        seen
    }
}
