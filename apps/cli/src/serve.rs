//! `fibrpc serve`: answers requests until SIGINT or SIGTERM, then finishes those in flight.

use std::sync::Arc;

use fibrpc_domain::Fibonacci;
use fibrpc_fib::Fib;
use fibrpc_rpc::metrics::Registry;
use fibrpc_rpc::{Metrics, RpcServer, ServerConfig};

use crate::args::ServeArgs;
use crate::{observe, shutdown, transport};

pub async fn run(args: ServeArgs) -> Result<(), String> {
    // Bound first: an address in use fails at once, before the broker is involved.
    let endpoint = match args.metrics {
        Some(address) => Some(observe::bind(address).await?),
        None => None,
    };
    let mut registry = Registry::default();
    let metrics = endpoint.is_some().then(|| Metrics::register(&mut registry));
    let transport = transport::connect_server(&args.broker, &args.request_queue).await?;
    let config = ServerConfig {
        queue: args.broker.queue.clone(),
        prefetch: args.prefetch,
        concurrency: args.concurrency,
        max_body_bytes: args.max_body,
        metrics,
        ..ServerConfig::default()
    };
    let service = Fib::service(Fibonacci::with_max_n(args.max_n));
    let server = RpcServer::new(transport.replies, config, service);
    if let Some(listener) = endpoint {
        let address = listener.local_addr().map_err(|error| error.to_string())?;
        observe::spawn(listener, Arc::new(registry), server.readiness());
        println!(" [x] Metrics on http://{address}/metrics");
    }
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
