//! `fibrpc serve`: answers requests until SIGINT or SIGTERM, then finishes those in flight.

use fibrpc_domain::Fibonacci;
use fibrpc_rpc::{Fib, RpcServer, ServerConfig};

use crate::args::ServeArgs;
use crate::{shutdown, transport};

pub async fn run(args: ServeArgs) -> Result<(), String> {
    let transport = transport::connect_server(&args.broker, &args.request_queue).await?;
    let config = ServerConfig {
        queue: args.broker.queue.clone(),
        prefetch: args.prefetch,
        concurrency: args.concurrency,
        max_body_bytes: args.max_body,
        ..ServerConfig::default()
    };
    let service = Fib::service(Fibonacci::with_max_n(args.max_n));
    let server = RpcServer::new(transport.replies, config, service);
    let stats = server.stats();
    let ready = async {
        // Tests and scripts wait for this line before sending requests.
        println!(" [x] Awaiting RPC requests");
        shutdown::signalled().await;
    };
    server.run(ready).await.map_err(|error| error.to_string())?;
    println!(
        " [x] Stopped after {} replies ({} of them errors)",
        stats.answered() + stats.error_replies(),
        stats.error_replies()
    );
    Ok(())
}
