//! The whole RPC flow over the in-memory adapter.

fibrpc_conformance::protocol_tests!(Some(fibrpc_tests::MemoryFactory::default()));
