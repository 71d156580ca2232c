//! The whole RPC flow over RabbitMQ: the same scenarios as over the in-memory adapter, with
//! the tutorial's exclusive reply queue and with direct reply-to.

mod exclusive_reply_queue {
    fibrpc_conformance::protocol_tests!(fibrpc_tests::AmqpFactory::new_or_skip().await);
}

mod direct_reply_to {
    fibrpc_conformance::protocol_tests!(
        fibrpc_tests::AmqpFactory::with_reply_queue(fibrpc_amqp::ReplyQueueMode::Direct).await
    );
}
