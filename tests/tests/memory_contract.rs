//! The transport contract over the in-memory adapter.

fibrpc_conformance::contract_tests!(Some(fibrpc_tests::MemoryFactory::default()));
