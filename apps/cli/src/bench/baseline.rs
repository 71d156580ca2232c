//! The baseline side: the same calls with nothing of fibrpc. Over a broker, the bare clients
//! and echo servers of the adapters (`fibrpc bare-echo`); in memory, a channel to an echo
//! task. Its servers run where fibrpc's do: in this process, as child processes, or the
//! user's.

use std::sync::Arc;

use fibrpc_amqp::AmqpTransport;
use tokio::sync::mpsc;

use super::caller::{Caller, MemoryRequest};
use super::discover;
use super::process::ServerProcess;
use super::settings::{Placement, Settings};
use super::side::Side;
use crate::args::TransportKind;
use crate::bare::{BareCaller, BareServer};
use crate::transport::{self, AdminTransport};

/// Sets up the baseline side; on failure, what was set up is undone.
pub(crate) async fn open(settings: &Settings<'_>, brokers: Vec<u32>) -> Result<Side, String> {
    let mut side = Side::new("baseline", brokers);
    let outcome = match settings.broker() {
        None => {
            memory(settings, &mut side);
            Ok(())
        }
        Some(broker) => on_broker(settings, broker, &mut side).await,
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
    broker: TransportKind,
    side: &mut Side,
) -> Result<(), String> {
    let args = settings.args;
    let queue = match &settings.placement {
        Placement::External { baseline_queue, .. } => baseline_queue
            .clone()
            .ok_or("--servers 0 --baseline needs --baseline-queue")?,
        _ => {
            let queue = format!("fibrpc.bench.bare.{}", uuid::Uuid::new_v4().simple());
            if broker == TransportKind::Amqp {
                // Declared here as fibrpc's (same kind and arguments), before the echo servers
                // use it; it outlives them unless deleted. (A core NATS subject leaves nothing.)
                let config =
                    transport::amqp_server_config(&args.urls, args.reply_to, &args.request_queue)?;
                let admin = AmqpTransport::open(config)
                    .await
                    .map_err(|error| error.to_string())?;
                admin
                    .declare(&queue)
                    .await
                    .map_err(|error| error.to_string())?;
                let doomed = queue.clone();
                side.on_close(async move {
                    admin
                        .delete(&doomed)
                        .await
                        .map_err(|error| error.to_string())
                });
            }
            queue
        }
    };
    match &settings.placement {
        Placement::InProcess => {
            for _ in 0..args.servers {
                let server =
                    BareServer::start(broker, &args.urls, &queue, settings.prefetch).await?;
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
                args.transport.name(),
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
        let client =
            BareCaller::connect(broker, &args.urls, &queue, settings.most_in_flight()).await?;
        side.callers.push(Caller::Bare {
            client,
            body: body.clone(),
        });
    }
    Ok(())
}
