//! `fibrpc demo`: the whole RPC flow in one process over the in-memory broker.

use std::sync::Arc;

use fibrpc_domain::Fibonacci;
use fibrpc_fib::Fib;
use fibrpc_in_memory::InMemoryBroker;
use fibrpc_rpc::{ClientConfig, RpcClient, RpcServer, ServerConfig};

use crate::args::DemoArgs;

pub async fn run(args: DemoArgs) -> Result<(), String> {
    let broker = InMemoryBroker::new();
    let server_config = ServerConfig::default();
    let queue = server_config.queue.clone();
    // The queue exists before the first call, as it would once a server has started.
    broker.declare_queue(&queue);

    let server = RpcServer::new(
        Arc::new(broker.connect()),
        server_config,
        Fib::service(Fibonacci::default()),
    )
    .spawn();

    let client = RpcClient::connect(
        Arc::new(broker.connect()),
        ClientConfig {
            queue,
            ..ClientConfig::default()
        },
    )
    .await
    .map_err(|error| error.to_string())?;
    let mut outcome = Ok(());
    for n in args.numbers {
        println!(" [x] Requesting fib({n})");
        match client.call::<Fib>(n).await {
            Ok(value) => println!(" [.] Got {value}"),
            Err(error) => {
                outcome = Err(format!("fib({n}) failed: {error}"));
                break;
            }
        }
    }
    server.stop().await.map_err(|error| error.to_string())?;
    outcome
}
