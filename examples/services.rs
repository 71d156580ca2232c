//! fib and a second service, text statistics, served side by side on one queue and called by
//! one client:
//!
//! ```sh
//! cargo run --release --example services                       # in-memory broker
//! cargo run --release --example services -- --transport amqp   # RabbitMQ on 127.0.0.1:5672
//! ```
//!
//! `--amqp-url URL` (or `AMQP_URL`) names another RabbitMQ. The queue is made for the run and
//! deleted after it.

use std::process::ExitCode;
use std::sync::Arc;

use fibrpc_amqp::{AmqpConfig, AmqpTransport};
use fibrpc_examples::session;
use fibrpc_in_memory::InMemoryBroker;

enum Transport {
    Memory,
    Amqp { url: String },
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Transport, String> {
    let mut amqp_url = std::env::var("AMQP_URL").unwrap_or_else(|_| AmqpConfig::default().url);
    let mut kind = "memory".to_owned();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--transport" => kind = value()?,
            "--amqp-url" => amqp_url = value()?,
            _ => {
                return Err(format!(
                    "unknown argument {arg:?} (--transport memory|amqp, --amqp-url URL)"
                ))
            }
        }
    }
    match kind.as_str() {
        "memory" => Ok(Transport::Memory),
        "amqp" => Ok(Transport::Amqp { url: amqp_url }),
        other => Err(format!("unknown transport {other:?} (memory or amqp)")),
    }
}

async fn run(transport: Transport) -> Result<(), String> {
    let queue = format!("fibrpc.example.services.{}", uuid::Uuid::new_v4().simple());
    let mut stdout = std::io::stdout();
    match transport {
        Transport::Memory => {
            let broker = InMemoryBroker::new();
            broker.declare_queue(&queue);
            let connection = Arc::new(broker.connect());
            session::run(connection.clone(), connection, &queue, &mut stdout).await
        }
        Transport::Amqp { url } => {
            let config = AmqpConfig {
                url,
                ..AmqpConfig::default()
            };
            let connection = Arc::new(
                AmqpTransport::connect(config)
                    .await
                    .map_err(|error| error.to_string())?,
            );
            connection
                .declare_request_queue(&queue)
                .await
                .map_err(|error| error.to_string())?;
            let outcome =
                session::run(connection.clone(), connection.clone(), &queue, &mut stdout).await;
            if let Err(error) = connection.delete_queue(&queue).await {
                eprintln!("services: could not delete the queue {queue}: {error}");
            }
            outcome
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match parse(std::env::args().skip(1)) {
        Ok(transport) => run(transport).await,
        Err(error) => Err(error),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("services: {error}");
            ExitCode::FAILURE
        }
    }
}
