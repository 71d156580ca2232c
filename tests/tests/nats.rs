//! NATS through the same kit as the other adapters: the transport contract and the whole
//! RPC flow; then what is particular to NATS.

mod core_mode {
    mod contract {
        fibrpc_conformance::contract_tests!(
            fibrpc_tests::NatsFactory::new_or_skip(fibrpc_nats::NatsMode::Core).await
        );
    }

    mod protocol {
        fibrpc_conformance::protocol_tests!(
            fibrpc_tests::NatsFactory::new_or_skip(fibrpc_nats::NatsMode::Core).await
        );
    }
}

mod jetstream_mode {
    mod contract {
        fibrpc_conformance::contract_tests!(
            fibrpc_tests::NatsFactory::new_or_skip(fibrpc_nats::NatsMode::JetStream).await
        );
    }

    mod protocol {
        fibrpc_conformance::protocol_tests!(
            fibrpc_tests::NatsFactory::new_or_skip(fibrpc_nats::NatsMode::JetStream).await
        );
    }
}

mod nats {
    use std::time::{Duration, Instant};

    use fibrpc_conformance::{eventually, unique_queue};
    use fibrpc_nats::{NatsConfig, NatsMode, NatsTransport};
    use fibrpc_ports::{
        Envelope, IncomingRequest, QueueAdmin, ReplyTransport, RequestStream, RequestTransport,
        TransportError,
    };

    const LIMIT: Duration = Duration::from_secs(10);

    async fn next(stream: &mut Box<dyn RequestStream>) -> IncomingRequest {
        tokio::time::timeout(LIMIT, stream.next_request())
            .await
            .expect("no request within the limit")
            .expect("the stream failed")
    }

    /// Nothing listens on port 1: `connect` fails at once with `Unreachable`, naming the
    /// address with its password redacted. Needs no NATS server.
    #[tokio::test]
    async fn an_unreachable_server_is_reported_fast_without_its_password() {
        let config = NatsConfig {
            url: "nats://fibrpc:hunter2@127.0.0.1:1".to_owned(),
            connect_timeout: Duration::from_secs(3),
            ..NatsConfig::default()
        };
        let started = Instant::now();
        let outcome = tokio::time::timeout(LIMIT, NatsTransport::connect(config))
            .await
            .expect("connect hung");
        let Err(error) = outcome else {
            panic!("connected to a closed port");
        };
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "took {:?}",
            started.elapsed()
        );
        let TransportError::Unreachable { address, .. } = &error else {
            panic!("not Unreachable: {error:?}");
        };
        assert_eq!(address, "nats://fibrpc:***@127.0.0.1:1");
        assert!(
            !format!("{error} {error:?}").contains("hunter2"),
            "{error:?}"
        );
    }

    /// TERM (reject without requeue, or a request past its deadline) and ACK take a request
    /// off the work-queue stream on this server version: nothing stays behind.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn settled_and_expired_requests_leave_the_stream() {
        let Some(factory) = fibrpc_tests::NatsFactory::new_or_skip(NatsMode::JetStream).await
        else {
            return;
        };
        let queue = unique_queue("nats-residue");
        let transport = factory.admin().clone();
        transport.declare_request_queue(&queue).await.unwrap();
        let expired = Envelope {
            deadline: Some(std::time::Instant::now()),
            ..Envelope::with_body("expired")
        };
        for request in [
            expired,
            Envelope::with_body("acked"),
            Envelope::with_body("rejected"),
        ] {
            transport.send_request(&queue, request).await.unwrap();
        }
        assert_eq!(transport.queue_depth(&queue).await.unwrap(), 3);
        let mut stream = transport.consume_requests(&queue, 4).await.unwrap();
        let acked = next(&mut stream).await;
        assert_eq!(
            acked.envelope.body, b"acked",
            "the expired one was handed out"
        );
        acked.ack().await.unwrap();
        next(&mut stream).await.reject(false).await.unwrap();
        eventually(LIMIT, "the stream to be empty", || {
            let transport = transport.clone();
            let queue = queue.clone();
            async move { transport.queue_depth(&queue).await.unwrap() == 0 }
        })
        .await;
        drop(stream);
        transport.delete_queue(&queue).await.unwrap();
        assert!(matches!(
            transport.queue_depth(&queue).await,
            Err(TransportError::NoSuchQueue { .. })
        ));
    }
}
