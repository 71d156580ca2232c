//! The README's `rust` snippets, each run exactly as written there: the test below holds them
//! between `README snippet` markers, and `the_readme_snippets_are_the_tests` checks that the
//! README shows the same text, so neither can change without the other.

const README: &str = include_str!("../../README.md");
const THIS_FILE: &str = include_str!("readme.rs");

// As the README has it, not as rustfmt would.
#[rustfmt::skip]
#[tokio::test]
async fn your_own_procedures() -> Result<(), Box<dyn std::error::Error>> {
    // README snippet: begin
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use std::sync::Arc;
    use fibrpc_in_memory::InMemoryBroker;
    use fibrpc_rpc::{ClientConfig, Procedure, RpcClient, RpcServer, ServerConfig, Service};

    /// Adds to a total the server keeps, and answers the new total.
    struct Add;

    #[derive(Debug, thiserror::Error, serde::Serialize, serde::Deserialize)]
    #[error("the total would overflow")]
    struct Overflow;

    impl Procedure for Add {
        const NAME: &'static str = "counter.add";
        type Request = u64;
        type Response = u64;
        type Error = Overflow; // serde types: bincode or JSON, as the caller chooses
    }

    let service = Service::new(AtomicU64::new(0)).register(Add, |total, n| async move {
        let old = total.fetch_update(SeqCst, SeqCst, |t| t.checked_add(n)).map_err(|_| Overflow)?;
        Ok(old + n)
    });
    // Any adapter's connection: AmqpTransport::connect(AmqpConfig::default()).await?, ...
    let transport = Arc::new(InMemoryBroker::new().connect());
    let mut server = RpcServer::new(transport.clone(), ServerConfig::default(), service).spawn();
    server.ready().await?; // the queue (`rpc_queue` by default) exists and is consumed
    let client = RpcClient::connect(transport, ClientConfig::default()).await?;
    assert_eq!(client.call::<Add>(5).await?, 5); // Err(CallError::Remote(Overflow)) past u64::MAX
    server.stop().await?; // finishes and settles the requests in flight
    // README snippet: end
    Ok(())
}

/// The README's "Connect by URL" snippet, and its server binary (compiled, not run: the
/// CLI's `user_server` test runs one).
#[rustfmt::skip]
#[tokio::test]
async fn the_connect_by_url_snippet_runs() -> Result<(), Box<dyn std::error::Error>> {
    // README snippet: begin
    use fibrpc_fib::Fib;
    use fibrpc_rpc::{ClientConfig, RpcClient, RpcServer, ServerConfig};
    // amqp://127.0.0.1:5672/%2f, nats://127.0.0.1:4222, redis://127.0.0.1:6379 or memory://name
    let url = std::env::var("FIBRPC_URL").unwrap_or_else(|_| "memory://readme".to_owned());
    let connection = fibrpc_app::connect(&url).await?; // a ConnectError otherwise
    let service = Fib::service(Default::default());
    let mut server = RpcServer::new(connection.replies.clone(), ServerConfig::default(), service).spawn();
    server.ready().await?; // the server declared `rpc_queue` and consumes it
    let client = RpcClient::connect(connection.requests.clone(), ClientConfig::default()).await?;
    assert_eq!(client.call::<Fib>(30).await?.to_string(), "832040");
    server.stop().await?;
    // README snippet: end
    Ok(())
}

#[rustfmt::skip]
#[test]
fn the_server_binary_snippet_compiles() {
    // README snippet: begin
    use fibrpc_domain::Fibonacci;
    use fibrpc_fib::Fib;

    fn main() -> std::process::ExitCode {
        fibrpc_app::serve(Fib::service(Fibonacci::default()))
    }
    // README snippet: end
    let _: fn() -> std::process::ExitCode = main;
}

/// Each `rust` block of the README, lines trimmed of their indentation.
fn readme_snippets() -> Vec<Vec<&'static str>> {
    let mut snippets = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in README.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```rust") => current = Some(Vec::new()),
            (Some(_), "```") => snippets.extend(current.take()),
            (Some(snippet), line) => snippet.push(line.trim()),
            (None, _) => {}
        }
    }
    snippets
}

/// The text between each pair of markers in this file, lines trimmed of their indentation.
fn tested_snippets() -> Vec<Vec<&'static str>> {
    let begin = concat!("// README snippet", ": begin");
    let end = concat!("// README snippet", ": end");
    let mut snippets = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in THIS_FILE.lines().map(str::trim) {
        if line == begin {
            current = Some(Vec::new());
        } else if line == end {
            snippets.extend(current.take());
        } else if let Some(snippet) = &mut current {
            snippet.push(line);
        }
    }
    snippets
}

#[test]
fn the_readme_snippets_are_the_tests() {
    let readme = readme_snippets();
    let tested = tested_snippets();
    assert!(!readme.is_empty(), "the README has no rust snippet");
    for snippet in &readme {
        assert!(
            tested.contains(snippet),
            "this README snippet is not run by a test as written:\n{}",
            snippet.join("\n")
        );
    }
    assert_eq!(
        readme.len(),
        tested.len(),
        "a tested snippet is not in the README"
    );
}
