//! A server no one here wrote: a pika server of `text.count` over JSON, written from
//! docs/wire.md alone (tests/interop/json_server.py), answers fibrpc's typed Rust client.

mod support;

use std::process::Command;

use fibrpc_examples::text::{Count, Counts, Top};
use fibrpc_rpc::{codec, CallError, ClientConfig, Fault, RpcClient};
use support::*;

#[tokio::test]
async fn a_python_server_written_from_the_wire_spec_answers_the_typed_client() {
    if !rabbitmq_available() {
        return;
    }
    let queue = unique_queue("py-server");
    let mut command = Command::new(python_with_pika());
    command.arg(interop_script("json_server.py")).arg(&queue);
    let server = Process::start(command, "ready");

    let connection = fibrpc_app::connect("amqp://127.0.0.1:5672/%2f")
        .await
        .unwrap();
    let config = ClientConfig {
        queue: queue.clone(),
        codec: codec::JSON,
        ..ClientConfig::default()
    };
    let client = RpcClient::connect(connection.requests.clone(), config)
        .await
        .unwrap();
    let counts = client.call::<Count>("a b c\nd".to_owned()).await.unwrap();
    assert_eq!(
        counts,
        Counts {
            lines: 2,
            words: 4,
            chars: 7
        }
    );
    // A procedure the Python server does not host: its fault, read as the typed fault.
    let missing = client.call::<Top>(3).await;
    assert!(
        matches!(
            missing,
            Err(CallError::Fault(Fault::UnknownProcedure { .. }))
        ),
        "{missing:?}"
    );
    drop(server);
    connection.admin.delete_queue(&queue).await.unwrap();
}
