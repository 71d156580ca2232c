//! The baseline side: the same calls with nothing of fibrpc. Over a broker, the bare clients
//! and echo servers of [`baseline`](crate::baseline) (`fibrpc bare-echo`); in memory, a channel to an echo
//! task. Its servers run where fibrpc's do: in this process, as child processes, or the
//! user's.

use std::sync::Arc;

use fibrpc_app::Transport;
use tokio::sync::mpsc;

use crate::baseline;
use crate::caller::{Caller, MemoryRequest};
use crate::discover;
use crate::process::ServerProcess;
use crate::settings::{Placement, Settings};
use crate::side::Side;

/// Sets up the baseline side; on failure, what was set up is undone.
pub(crate) async fn open(settings: &Settings<'_>, brokers: Vec<u32>) -> Result<Side, String> {
    let mut side = Side::new("baseline", brokers);
    let transport = settings.args.transport;
    let outcome = if transport.in_process {
        memory(settings, &mut side);
        Ok(())
    } else {
        on_broker(settings, &transport, &mut side).await
    };
    match outcome {
        Ok(()) => Ok(side),
        Err(error) => {
            let _ = side.close().await;
            Err(error)
        }
    }
}

/// An echo task; the echo computes nothing: fib(30) itself costs ~10 ns (`--domain`), far
/// below what is measured here.
fn memory(settings: &Settings<'_>, side: &mut Side) {
    let (requests, mut incoming) = mpsc::channel::<MemoryRequest>(settings.most_in_flight() * 2);
    let echo = tokio::spawn(async move {
        while let Some((body, reply)) = incoming.recv().await {
            // The caller waits on the other end; if it is gone there is nobody to tell.
            let _ = reply.send(body);
        }
    });
    side.watch.servers_in_client = true;
    side.on_close(async move {
        echo.abort();
        Ok(())
    });
    for _ in 0..settings.args.clients {
        side.callers.push(Caller::Memory {
            requests: requests.clone(),
            n: settings.args.n,
        });
    }
}

async fn on_broker(
    settings: &Settings<'_>,
    transport: &Transport,
    side: &mut Side,
) -> Result<(), String> {
    let args = settings.args;
    let queue = match &settings.placement {
        Placement::External { baseline_queue, .. } => baseline_queue
            .clone()
            .ok_or("--servers 0 --baseline needs --baseline-queue")?,
        _ => {
            let queue = format!("fibrpc.bench.bare.{}", uuid::Uuid::new_v4().simple());
            // Declared, where the echo needs that, before the echo servers use it; it
            // outlives them unless deleted.
            if baseline::declares_its_queue(transport) {
                settings.declare_queue(&queue, side, false).await?;
            }
            queue
        }
    };
    match &settings.placement {
        Placement::InProcess => {
            for _ in 0..args.servers {
                let server =
                    baseline::start_echo(transport, &args.urls, &queue, settings.prefetch).await?;
                side.watch.servers_in_client = true;
                side.on_close(async move {
                    server.stop().await;
                    Ok(())
                });
            }
        }
        Placement::Processes => {
            let echo_args: Vec<String> = [
                "bare-echo",
                "--transport",
                transport.name,
                "--queue",
                &queue,
                "--prefetch",
                &settings.prefetch.to_string(),
            ]
            .map(str::to_owned)
            .into_iter()
            .chain(args.request_queue.to_args())
            .collect();
            for _ in 0..args.servers {
                let server = ServerProcess::start(&echo_args, &args.urls).await?;
                side.watch.servers.push(server.pid());
                side.on_close(server.stop());
            }
        }
        Placement::External { .. } => side.watch.servers = discover::serving(&queue),
    }
    // The reply must be the request's body: a few bytes, as fibrpc's request and reply are.
    let body: Arc<[u8]> = args.n.to_string().into_bytes().into();
    for _ in 0..args.clients {
        let in_flight = settings.most_in_flight();
        let client = baseline::connect_client(transport, &args.urls, &queue, in_flight).await?;
        side.callers.push(Caller::Bare {
            client,
            body: body.clone(),
        });
    }
    Ok(())
}
