//! What `Drop` of an adapter's handle may do: hand work to the runtime, never wait for it.

use std::future::Future;

/// Runs `task` on the current tokio runtime, if there is one, without waiting for it: for a
/// `Drop` that must tell the broker something (give back a request dropped unsettled, cancel
/// a consumer) and cannot await. Returns false when no runtime is running here (a drop on a
/// plain thread, or while the runtime shuts down); the adapter then relies on the broker to
/// redeliver (its connection closing, an acknowledgement timeout), as it must anyway when the
/// whole process dies.
///
/// ```
/// struct Held;
/// impl Drop for Held {
///     fn drop(&mut self) {
///         fibrpc_ports::spawn_from_drop(async { /* a NAK to the broker */ });
///     }
/// }
/// drop(Held); // no runtime: nothing runs, nothing panics
/// ```
pub fn spawn_from_drop(task: impl Future<Output = ()> + Send + 'static) -> bool {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            // The task is detached: nobody is left to hear how it went.
            drop(runtime.spawn(task));
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_runtime_nothing_runs() {
        assert!(!spawn_from_drop(async {
            unreachable!("no runtime to run on")
        }));
    }

    #[tokio::test]
    async fn on_a_runtime_the_task_runs() {
        let (done, ran) = tokio::sync::oneshot::channel();
        assert!(spawn_from_drop(async move {
            let _ = done.send(());
        }));
        ran.await.expect("the task did not run");
    }
}
