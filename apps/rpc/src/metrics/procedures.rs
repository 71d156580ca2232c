//! Per-procedure values a client finds without a lock: a fixed table of slots, each written
//! once. A client calls procedures it learns of only at its first call of each, so the table
//! fills as it goes; read, it is a scan of a few pointers.

use std::sync::{Mutex, OnceLock};

/// Procedures counted apart; calls of any beyond are counted under [`OTHERS`].
const SLOTS: usize = 32;

/// The label of procedures past the table's capacity.
pub const OTHERS: &str = "other";

pub(crate) struct Procedures<T> {
    slots: [OnceLock<(&'static str, T)>; SLOTS],
    others: OnceLock<T>,
    /// Held only to add a procedure, so that two first calls do not add it twice.
    adding: Mutex<()>,
}

impl<T> Default for Procedures<T> {
    fn default() -> Self {
        Self {
            slots: std::array::from_fn(|_| OnceLock::new()),
            others: OnceLock::new(),
            adding: Mutex::new(()),
        }
    }
}

impl<T> Procedures<T> {
    /// The value of `name`, made by `make(name)` the first time.
    pub(crate) fn get_or_insert(&self, name: &'static str, make: impl Fn(&'static str) -> T) -> &T {
        if let Some(found) = self.find(name) {
            return found;
        }
        let _adding = self
            .adding
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(found) = self.find(name) {
            return found;
        }
        match self.slots.iter().find(|slot| slot.get().is_none()) {
            Some(slot) => &slot.get_or_init(|| (name, make(name))).1,
            None => self.others.get_or_init(|| make(OTHERS)),
        }
    }

    fn find(&self, name: &str) -> Option<&T> {
        for slot in &self.slots {
            let (known, value) = slot.get()?;
            // A procedure's name is one constant: the same pointer, but for copies the
            // compiler may make, which the comparison of the text then finds.
            if std::ptr::eq(*known, name) || *known == name {
                return Some(value);
            }
        }
        // Every slot is taken: the name is one of the others.
        self.others.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_is_made_once_and_the_overflow_shares_one_value() {
        let table = Procedures::<String>::default();
        let made = std::sync::atomic::AtomicUsize::new(0);
        let make = |name: &'static str| {
            made.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            name.to_owned()
        };
        assert_eq!(table.get_or_insert("fib", make), "fib");
        assert_eq!(table.get_or_insert("fib", make), "fib");
        let names: Vec<&'static str> = (0..SLOTS + 3)
            .map(|i| &*Box::leak(format!("p{i}").into_boxed_str()))
            .collect();
        for name in &names {
            table.get_or_insert(name, make);
        }
        assert_eq!(table.get_or_insert(names[0], make), "p0");
        assert_eq!(table.get_or_insert(names[SLOTS + 2], make), OTHERS);
        // fib, the SLOTS - 1 that fit, and one value for all the others.
        assert_eq!(made.into_inner(), SLOTS + 1);
    }
}
