//! The README's "Your own procedures" snippet, as written there, over the in-memory broker.

use std::sync::Arc;

use fibrpc_in_memory::InMemoryBroker;

#[tokio::test]
async fn the_readme_snippet_runs() -> Result<(), Box<dyn std::error::Error>> {
    let broker = InMemoryBroker::new();
    broker.declare_queue(&fibrpc_rpc::ServerConfig::default().queue);
    let transport = Arc::new(broker.connect());

    // From here to the end, the README's code block.
    use fibrpc_rpc::{ClientConfig, Procedure, RpcClient, RpcServer, ServerConfig, Service};
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

    /// Adds to a total the server keeps, and answers the new total.
    struct Add;

    #[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
    #[error("the total would overflow")]
    struct Overflow;

    impl Procedure for Add {
        const NAME: &'static str = "counter.add";
        type Request = u64;
        type Response = u64;
        type Error = Overflow; // serde types, written with bincode
    }

    let service = Service::new(AtomicU64::new(0)).register(Add, |total, n| async move {
        let old = total
            .fetch_update(SeqCst, SeqCst, |t| t.checked_add(n))
            .map_err(|_| Overflow)?;
        Ok(old + n)
    });
    let server = RpcServer::new(transport.clone(), ServerConfig::default(), service).spawn();
    let client = RpcClient::connect(transport, ClientConfig::default()).await?;
    assert_eq!(client.call::<Add>(5).await?, 5); // Err(CallError::Remote(Overflow)) past u64::MAX

    // Not in the README: the overflow, and a clean stop.
    assert!(matches!(
        client.call::<Add>(u64::MAX).await,
        Err(fibrpc_rpc::CallError::Remote(Overflow))
    ));
    server.stop().await?;
    Ok(())
}

/// The README's "Connect by URL" snippet, over `memory://` instead of NATS.
#[tokio::test]
async fn the_connect_by_url_snippet_runs() -> Result<(), Box<dyn std::error::Error>> {
    use fibrpc_fib::Fib;
    use fibrpc_rpc::{ClientConfig, RpcClient, RpcServer, ServerConfig};
    let service = Fib::service(Default::default());

    let connection = fibrpc_app::connect("memory://readme").await?; // a ConnectError otherwise
    connection.admin.declare_request_queue("rpc_queue").await?; // QueueAdmin
    let server =
        RpcServer::new(connection.replies.clone(), ServerConfig::default(), service).spawn();
    let client = RpcClient::connect(connection.requests.clone(), ClientConfig::default()).await?;

    assert_eq!(client.call::<Fib>(30).await?.to_string(), "832040");
    server.stop().await?;
    Ok(())
}
