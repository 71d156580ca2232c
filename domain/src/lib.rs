//! The domain of fibrpc: what is computed, with no notion of how it travels.
//!
//! This crate is pure: no async, no I/O, no broker. Everything else in the workspace depends
//! on it; it depends on nothing of ours.

mod error;
mod fib;

pub use error::DomainError;
pub use fib::{fib, Fibonacci, DEFAULT_MAX_N};

/// The exact integer type of a Fibonacci value (values past 2^64 are ordinary answers).
pub use dashu_int::UBig as BigNumber;
