//! The `services` example's session over the in-memory broker and over RabbitMQ: both
//! services answer, the procedure's error and the unknown procedure come back typed.

use std::sync::Arc;

use fibrpc_amqp::{AmqpConfig, AmqpTransport};
use fibrpc_examples::session;
use fibrpc_in_memory::InMemoryBroker;
use fibrpc_test_support::{skip_or_fail, unique_queue};

fn check(output: &[u8]) {
    let output = String::from_utf8_lossy(output);
    let expected = [
        "fib(30) = 832040",
        "text.count(\"the quick brown fox jumps over the lazy dog\") = 1 line, 9 words, 43 characters",
        "text.count(\"The dog sleeps.\\nThe fox runs.\") = 2 lines, 6 words, 29 characters",
        "text.top(3) = the 4, dog 2, fox 2",
        "text.count(<2,000 characters>) = error: a text of 2000 characters is above this server's bound of 1000",
        "example.missing() = error: no procedure named \"example.missing\" on this server",
    ];
    assert_eq!(output.lines().collect::<Vec<_>>(), expected, "{output}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_runs_in_memory() {
    let broker = InMemoryBroker::new();
    let queue = unique_queue("example");
    broker.declare_queue(&queue);
    let connection = Arc::new(broker.connect());
    let mut output = Vec::new();
    session::run(connection.clone(), connection, &queue, &mut output)
        .await
        .unwrap();
    check(&output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_runs_over_rabbitmq() {
    let config = AmqpConfig {
        url: std::env::var("AMQP_URL").unwrap_or_else(|_| AmqpConfig::default().url),
        ..AmqpConfig::default()
    };
    let connection = match AmqpTransport::connect(config).await {
        Ok(connection) => Arc::new(connection),
        Err(error) => return skip_or_fail("RabbitMQ", error, "rabbitmq-server -detached"),
    };
    let queue = unique_queue("example");
    connection.declare_request_queue(&queue).await.unwrap();
    let mut output = Vec::new();
    let outcome = session::run(connection.clone(), connection.clone(), &queue, &mut output).await;
    connection.delete_queue(&queue).await.unwrap();
    outcome.unwrap();
    check(&output);
}
