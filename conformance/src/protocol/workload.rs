//! The services the calls scenarios run against, behind one interface.

use std::future::Future;

use fibrpc_domain::{fib, Fibonacci};
use fibrpc_examples::text::{self, Count, Counts};
use fibrpc_fib::Fib;
use fibrpc_rpc::{CallError, RpcClient, ServerConfig};
use fibrpc_test_support::RunningServer;

use crate::Connection;

/// A service the calls scenarios call. Call number `i` has an answer of its own (for `i`
/// below 1,000), so that a reply that reaches the wrong caller shows.
pub trait Workload: Clone + Send + Sync + 'static {
    /// A server of the service over `connection`.
    fn start(&self, connection: &Connection, config: ServerConfig) -> RunningServer;

    /// Makes call number `i` and checks its answer (a wrong one panics). A call that failed
    /// gives its error, with the procedure's own as text.
    fn call(
        &self,
        client: &RpcClient,
        i: u64,
    ) -> impl Future<Output = Result<(), CallError<String>>> + Send;
}

/// fib(i).
#[derive(Clone, Copy)]
pub struct FibWorkload;

impl Workload for FibWorkload {
    fn start(&self, connection: &Connection, config: ServerConfig) -> RunningServer {
        let service = Fib::service(Fibonacci::default());
        RunningServer::start(connection.replies.clone(), config, service)
    }

    async fn call(&self, client: &RpcClient, i: u64) -> Result<(), CallError<String>> {
        let value = client
            .call::<Fib>(i)
            .await
            .map_err(|error| error.map_remote(|error| error.to_string()))?;
        assert_eq!(value, fib(i), "fib({i})");
        Ok(())
    }
}

/// `text.count` of a text of `i % 1000 + 1` words, from the example's text-statistics
/// service, which keeps a tally of every word it counts.
#[derive(Clone, Copy)]
pub struct TextWorkload;

impl Workload for TextWorkload {
    fn start(&self, connection: &Connection, config: ServerConfig) -> RunningServer {
        RunningServer::start(connection.replies.clone(), config, text::service(1 << 16))
    }

    async fn call(&self, client: &RpcClient, i: u64) -> Result<(), CallError<String>> {
        let words = i % 1000 + 1;
        let counts = client
            .call::<Count>("w ".repeat(words as usize))
            .await
            .map_err(|error| error.map_remote(|error| error.to_string()))?;
        let expected = Counts {
            lines: 1,
            words,
            chars: 2 * words,
        };
        assert_eq!(counts, expected, "text.count of call {i}");
        Ok(())
    }
}
