/// A queue name no other test uses, so that tests run in parallel on one shared broker.
pub fn unique_queue(purpose: &str) -> String {
    format!("fibrpc.test.{purpose}.{}", uuid::Uuid::new_v4().simple())
}

/// `prefix` made unique, for connection names and the like.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}
