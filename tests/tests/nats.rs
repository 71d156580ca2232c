//! NATS through the same kit as the other adapters: the transport contract and the whole
//! RPC flow.

mod contract {
    fibrpc_conformance::contract_tests!(fibrpc_tests::NatsFactory::new_or_skip().await);
}

mod protocol {
    fibrpc_conformance::protocol_tests!(fibrpc_tests::NatsFactory::new_or_skip().await);
}
