//! `fibrpc bare-echo`: the bare echo server `fibrpc bench --baseline` measures fibrpc against,
//! alone in its process, as `fibrpc serve` runs fibrpc's. Stops on SIGINT or SIGTERM.

use fibrpc_app::{check_queue_flags, shutdown, ReplyToMode};

use crate::args::BareEchoArgs;
use crate::baseline;

/// Runs the bare echo server `args` say until SIGINT or SIGTERM.
///
/// # Errors
/// One line: flags the transport does not read, a queue or a connection that cannot be had,
/// the connection lost while serving.
pub async fn run(args: BareEchoArgs) -> Result<(), String> {
    if !args.request_queue.given().is_empty() {
        check_queue_flags(&args.transport, &args.request_queue)?;
        // Declared through fibrpc's adapter, the same kind as `fibrpc serve` would make; the
        // echo then uses the queue as it finds it.
        let url = args.urls.url(&args.transport);
        let request_queue = Some(&args.request_queue);
        let connection = args
            .urls
            .connect(&url, None, ReplyToMode::Exclusive, request_queue)
            .await?;
        connection
            .admin
            .declare_request_queue(&args.queue)
            .await
            .map_err(|error| error.to_string())?;
    }
    let mut server =
        baseline::start_echo(&args.transport, &args.urls, &args.queue, args.prefetch).await?;
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
