//! Redis through the same kit as the other adapters: the transport contract and the whole
//! RPC flow; then what is particular to Redis.

mod contract {
    fibrpc_conformance::contract_tests!(fibrpc_tests::RedisFactory::new_or_skip().await);
}

mod protocol {
    fibrpc_conformance::protocol_tests!(fibrpc_tests::RedisFactory::new_or_skip().await);
}
