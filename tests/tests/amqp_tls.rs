//! `amqps://`: the whole flow over TLS against the local RabbitMQ, whose TLS listener and CA
//! `scripts/rabbitmq-tls.sh` makes (CI runs it); and a server certificate from another CA is
//! refused with a clear error.

use fibrpc_ports::QueueAdmin;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use std::sync::Arc;

use fibrpc_amqp::{AmqpConfig, AmqpTransport};
use fibrpc_domain::Fibonacci;
use fibrpc_fib::Fib;
use fibrpc_ports::TransportError;
use fibrpc_rpc::{ClientConfig, RpcClient, ServerConfig};
use fibrpc_test_support::{in_ci, unique_queue, RunningServer};

const TLS_URL: &str = "amqps://guest:guest@127.0.0.1:5671/%2f";

/// The CA files, or None (with the reason printed) when the TLS listener is not set up,
/// except with CI=true, where that fails the test.
fn tls_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("FIBRPC_TLS_DIR").unwrap_or_else(|_| "/var/lib/fibrpc-tls".to_owned()),
    );
    let listening = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5671".parse().unwrap(),
        Duration::from_secs(2),
    )
    .is_ok();
    if dir.join("ca.pem").exists() && listening {
        return Some(dir);
    }
    assert!(
        !in_ci(),
        "CI=true but RabbitMQ has no TLS listener: run scripts/rabbitmq-tls.sh"
    );
    eprintln!("skipping: no TLS listener on 127.0.0.1:5671 (run scripts/rabbitmq-tls.sh)");
    None
}

fn config(ca: &std::path::Path) -> AmqpConfig {
    AmqpConfig {
        url: TLS_URL.to_owned(),
        tls_ca_pem: Some(std::fs::read_to_string(ca).unwrap()),
        ..AmqpConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_runs_over_tls() {
    let Some(dir) = tls_dir() else { return };
    let queue = unique_queue("tls");
    let server_side = AmqpTransport::connect(config(&dir.join("ca.pem")))
        .await
        .unwrap();
    let server = RunningServer::start(
        Arc::new(server_side),
        ServerConfig {
            queue: queue.clone(),
            ..ServerConfig::default()
        },
        Fib::service(Fibonacci::default()),
    );
    let client_side = AmqpTransport::connect(config(&dir.join("ca.pem")))
        .await
        .unwrap();
    let client = RpcClient::connect(
        Arc::new(client_side.clone()),
        ClientConfig {
            queue: queue.clone(),
            ..ClientConfig::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(client.call::<Fib>(30).await.unwrap().to_string(), "832040");
    server.stop().await;
    client_side.delete_queue(&queue).await.unwrap();
}

#[tokio::test]
async fn a_certificate_from_another_ca_is_refused_clearly() {
    let Some(dir) = tls_dir() else { return };
    let started = Instant::now();
    let outcome = AmqpTransport::connect(config(&dir.join("wrong-ca.pem"))).await;
    let Err(TransportError::Unreachable { address, reason }) = outcome else {
        panic!("connected through a certificate nobody should trust");
    };
    assert_eq!(address, "amqps://guest:***@127.0.0.1:5671/%2f");
    assert!(
        reason.to_lowercase().contains("certificate"),
        "unclear reason: {reason}"
    );
    assert!(!reason.contains("guest:guest"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(10));
}
