//! The transport contract over RabbitMQ.

fibrpc_conformance::contract_tests!(fibrpc_tests::AmqpFactory::new_or_skip().await);
