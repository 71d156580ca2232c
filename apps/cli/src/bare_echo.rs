//! `fibrpc bare-echo`: the bare echo server `fibrpc bench --baseline` measures fibrpc against,
//! alone in its process, as `fibrpc serve` runs fibrpc's. Stops on SIGINT or SIGTERM.

use crate::args::BareEchoArgs;
use crate::transport::{self, Flags};
use crate::{args::ReplyToMode, shutdown};

pub async fn run(args: BareEchoArgs) -> Result<(), String> {
    if !args.request_queue.given().is_empty() {
        transport::check_queue_flags(&*args.transport, &args.request_queue)?;
        // Declared through fibrpc's adapter, the same kind as `fibrpc serve` would make; the
        // echo then uses the queue as it finds it.
        let flags = Flags {
            urls: &args.urls,
            tls_ca: None,
            reply_to: ReplyToMode::Exclusive,
            request_queue: Some(&args.request_queue),
        };
        args.transport.declare_queue(&flags, &args.queue).await?;
    }
    let mut server = args
        .transport
        .bare_echo(&args.urls, &args.queue, args.prefetch)
        .await?;
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
