//! Factories that plug each adapter into the conformance kit, shared by the workspace tests.

mod memory;

pub use memory::MemoryFactory;
