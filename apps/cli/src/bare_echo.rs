//! `fibrpc bare-echo`: the bare echo server `fibrpc bench --baseline` measures fibrpc against,
//! alone in its process, as `fibrpc serve` runs fibrpc's. Stops on SIGINT or SIGTERM.

use crate::args::BareEchoArgs;
use crate::bare::BareServer;
use crate::shutdown;

pub async fn run(args: BareEchoArgs) -> Result<(), String> {
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
