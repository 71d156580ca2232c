use std::sync::{Mutex, MutexGuard};

/// The broker's maps and queues stay consistent even if a holder panicked: every update is
/// one call.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
