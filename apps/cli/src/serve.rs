//! `fibrpc serve`: fib's server, on the library's server entry point.

use fibrpc_domain::Fibonacci;
use fibrpc_fib::Fib;

use crate::args::FibServeArgs;

pub async fn run(args: FibServeArgs) -> Result<(), String> {
    let service = Fib::service(Fibonacci::with_max_n(args.max_n));
    fibrpc_app::serve_with(args.server, service).await
}
