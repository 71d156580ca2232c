//! The `services` example's session over the in-memory broker and over RabbitMQ: both
//! services answer, the procedure's error and the unknown procedure come back typed.

use fibrpc_examples::session;
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

/// The session over the broker `url` names, on a queue of its own.
async fn session_over(url: &str) -> Option<Vec<u8>> {
    let connection = match fibrpc_app::connect(url).await {
        Ok(connection) => connection,
        Err(error) => {
            skip_or_fail(url, error, "start the broker");
            return None;
        }
    };
    let queue = unique_queue("example");
    connection
        .admin
        .declare_request_queue(&queue)
        .await
        .unwrap();
    let mut output = Vec::new();
    let outcome = session::run(&connection, &queue, &mut output).await;
    connection.admin.delete_queue(&queue).await.unwrap();
    outcome.unwrap();
    Some(output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_runs_in_memory() {
    let output = session_over("memory://services-example").await.unwrap();
    check(&output);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_runs_over_rabbitmq() {
    let url = std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://127.0.0.1:5672/%2f".into());
    if let Some(output) = session_over(&url).await {
        check(&output);
    }
}
