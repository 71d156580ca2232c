//! `fibrpc bare-echo`: the bare echo server `fibrpc bench --baseline` measures fibrpc against,
//! alone in its process, as `fibrpc serve` runs fibrpc's. Stops on SIGINT or SIGTERM.

use crate::args::{BareEchoArgs, TransportKind};
use crate::bare::BareServer;
use crate::{shutdown, transport};

pub async fn run(args: BareEchoArgs) -> Result<(), String> {
    let queue_flags = args.request_queue.given();
    if !queue_flags.is_empty() {
        if args.transport != TransportKind::Amqp {
            return Err(format!(
                "{} apply to RabbitMQ queues only (--transport amqp)",
                queue_flags.join(", ")
            ));
        }
        // Declared through fibrpc's adapter, the same kind as `fibrpc serve` would make; the
        // echo then uses the queue as it finds it.
        transport::declare_amqp_request_queue(&args.urls, &args.queue, &args.request_queue).await?;
    }
    let mut server =
        BareServer::start(args.transport, &args.urls, &args.queue, args.prefetch).await?;
    // The same words as `fibrpc serve`: scripts and tests wait for this line.
    println!(" [x] Awaiting RPC requests (bare echo)");
    let lost = tokio::select! {
        () = shutdown::signalled() => false,
        () = server.ended() => true,
    };
    let echoed = server.echoed();
    server.stop().await;
    println!(" [x] Stopped after {echoed} replies");
    if lost {
        return Err("the bare echo lost its connection to the broker".to_owned());
    }
    Ok(())
}
