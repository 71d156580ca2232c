use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// A queue name no other test uses, so tests run in parallel on one broker.
pub fn unique_queue(purpose: &str) -> String {
    format!("fibrpc.test.{purpose}.{}", uuid::Uuid::new_v4().simple())
}

/// Waits until `condition` holds, checking after every small step, and panics with `what`
/// if it does not within `limit`. For conditions no event announces (a counter, a depth).
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let give_up = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < give_up, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
